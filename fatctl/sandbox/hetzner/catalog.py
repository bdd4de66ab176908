"""The emulator's fixed catalog: locations, server types with prices, system images, and the
`/pricing` document. Prices are euro figures close to Hetzner's public list, not a quote."""

from __future__ import annotations

import copy
from typing import Any

VAT = 0.19

LOCATIONS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "fsn1",
        "description": "Falkenstein DC Park 1",
        "country": "DE",
        "city": "Falkenstein",
        "latitude": 50.47612,
        "longitude": 12.370071,
        "network_zone": "eu-central",
    },
    {
        "id": 2,
        "name": "nbg1",
        "description": "Nuremberg DC Park 1",
        "country": "DE",
        "city": "Nuremberg",
        "latitude": 49.452102,
        "longitude": 11.076665,
        "network_zone": "eu-central",
    },
    {
        "id": 3,
        "name": "hel1",
        "description": "Helsinki DC Park 1",
        "country": "FI",
        "city": "Helsinki",
        "latitude": 60.169855,
        "longitude": 24.938379,
        "network_zone": "eu-central",
    },
    {
        "id": 4,
        "name": "ash",
        "description": "Ashburn, VA",
        "country": "US",
        "city": "Ashburn, VA",
        "latitude": 39.045821,
        "longitude": -77.487073,
        "network_zone": "us-east",
    },
    {
        "id": 5,
        "name": "hil",
        "description": "Hillsboro, OR",
        "country": "US",
        "city": "Hillsboro, OR",
        "latitude": 45.54222,
        "longitude": -122.951924,
        "network_zone": "us-west",
    },
    {
        "id": 6,
        "name": "sin",
        "description": "Singapore",
        "country": "SG",
        "city": "Singapore",
        "latitude": 1.283333,
        "longitude": 103.833333,
        "network_zone": "ap-southeast",
    },
]
_EU = ("fsn1", "nbg1", "hel1")
_ALL = tuple(loc["name"] for loc in LOCATIONS)

# name, id, cores, memory GB, disk GB, cpu_type, architecture, monthly net EUR, locations
_TYPES = [
    ("cx23", 101, 2, 4.0, 40, "shared", "x86", 3.49, _EU),
    ("cx33", 102, 4, 8.0, 80, "shared", "x86", 5.49, _EU),
    ("cpx22", 103, 2, 4.0, 80, "shared", "x86", 5.99, _ALL),
    ("cax11", 104, 2, 4.0, 40, "shared", "arm", 3.79, _EU),
]
_TRAFFIC = {"eu-central": 20, "us-east": 1, "us-west": 1, "ap-southeast": 1}


def _money(net: float) -> dict[str, str]:
    return {"net": f"{net:.10f}", "gross": f"{net * (1 + VAT):.10f}"}


def location(name: str) -> dict[str, Any] | None:
    return next((dict(loc) for loc in LOCATIONS if name in (loc["name"], str(loc["id"]))), None)


def _prices(monthly: float, names: tuple[str, ...]) -> list[dict[str, Any]]:
    prices = []
    for name in names:
        zone = (location(name) or {})["network_zone"]
        factor = 1.0 if zone == "eu-central" else 1.2
        prices.append(
            {
                "location": name,
                "price_hourly": _money(round(monthly * factor / 730, 4)),
                "price_monthly": _money(monthly * factor),
                "included_traffic": _TRAFFIC[zone] * 1024**4,
                "price_per_tb_traffic": _money(1.0 if zone == "eu-central" else 7.2),
            }
        )
    return prices


def _server_type(row: tuple[Any, ...]) -> dict[str, Any]:
    name, type_id, cores, memory, disk, cpu, arch, monthly, locs = row
    return {
        "id": type_id,
        "name": name,
        "description": name.upper(),
        "category": "shared_vcpu",
        "cores": cores,
        "memory": memory,
        "disk": disk,
        "deprecated": False,
        "deprecation": None,
        "prices": _prices(monthly, locs),
        "storage_type": "local",
        "cpu_type": cpu,
        "architecture": arch,
        "locations": [
            {
                "id": (location(n) or {})["id"],
                "name": n,
                "deprecation": None,
                "available": True,
                "recommended": True,
            }
            for n in locs
        ],
    }


SERVER_TYPES: list[dict[str, Any]] = [_server_type(row) for row in _TYPES]


def server_type(name: str) -> dict[str, Any] | None:
    return next((dict(t) for t in SERVER_TYPES if name in (t["name"], str(t["id"]))), None)


# name, os_version, description, ids per architecture
_SYSTEM_IMAGES = [
    ("debian-12", "12", "Debian 12", {"x86": 114690387, "arm": 114690389}),
    ("debian-13", "13", "Debian 13", {"x86": 310557660, "arm": 310557661}),
    ("ubuntu-24.04", "24.04", "Ubuntu 24.04", {"x86": 161547269, "arm": 161547270}),
]


def system_images() -> list[dict[str, Any]]:
    images = []
    for name, version, description, ids in _SYSTEM_IMAGES:
        for arch, image_id in ids.items():
            images.append(
                {
                    "id": image_id,
                    "type": "system",
                    "status": "available",
                    "name": name,
                    "description": description,
                    "image_size": None,
                    "disk_size": 5,
                    "created": "2025-01-01T00:00:00+00:00",
                    "created_from": None,
                    "bound_to": None,
                    "os_flavor": name.split("-")[0],
                    "os_version": version,
                    "rapid_deploy": True,
                    "protection": {"delete": False},
                    "deprecated": None,
                    "deleted": None,
                    "labels": {},
                    "architecture": arch,
                }
            )
    return images


def pricing() -> dict[str, Any]:
    ip_prices = [
        {"location": n, "price_hourly": _money(0.0008), "price_monthly": _money(0.5)} for n in _ALL
    ]
    return {
        "pricing": {
            "currency": "EUR",
            "vat_rate": f"{VAT * 100:.2f}",
            "image": {"price_per_gb_month": _money(0.011)},
            "floating_ip": {"price_monthly": _money(3.0)},
            "floating_ips": [],
            "primary_ips": [
                {"type": "ipv4", "prices": ip_prices},
                {
                    "type": "ipv6",
                    "prices": [
                        {**p, "price_hourly": _money(0.0), "price_monthly": _money(0.0)}
                        for p in ip_prices
                    ],
                },
            ],
            "server_backup": {"percentage": "20.00"},
            # Copies: a caller editing its document must not change the served catalog.
            "server_types": [
                {"id": t["id"], "name": t["name"], "prices": copy.deepcopy(t["prices"])}
                for t in SERVER_TYPES
            ],
            "volume": {"price_per_gb_month": _money(0.044)},
            "load_balancer_types": [],
        }
    }
