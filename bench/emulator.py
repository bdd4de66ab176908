"""Throughput of the sandbox API emulators under a provision-like load (no boxes).

Each simulated provision, through the official SDKs: 2 primary IPs, 1 server create (with the
shared firewall and ssh key), action polls until done, 1 server get; then 1 DNS list + A +
AAAA records. Prints wall time, requests per second, per-provision call counts from the
emulators' own stats, and latency percentiles of the server create call.

    python bench/emulator.py [--agents 100] [--workers 20] [--action-delay 0.2] [--processes]

--processes runs each emulator in its own process (as `fatctl sandbox up` does), so the
figures are not skewed by the benchmark's client threads sharing one interpreter with them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from cloudflare import Cloudflare
from hcloud import Client
from hcloud.firewalls.domain import FirewallRule
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers.domain import ServerCreatePublicNetwork

from fatctl.sandbox.apiemu.spawn import Spawned, spawn_emulator
from fatctl.sandbox.cloudflare import start_cloudflare_emulator
from fatctl.sandbox.hetzner import start_emulator

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEdZxU6tp4v3b8c2xz3dl7M9c5Q8lKfPf7kQyE4gH2Yo bench"


def provision(i: int, hc: Client, cf: Cloudflare, zone: str, fw, key) -> float:
    name, here = f"agent-{i:04d}", Location(name="fsn1")
    v4 = hc.primary_ips.create(type="ipv4", name=f"{name}-v4", location=here).primary_ip
    v6 = hc.primary_ips.create(type="ipv6", name=f"{name}-v6", location=here).primary_ip
    started = time.perf_counter()
    resp = hc.servers.create(
        name=name,
        server_type=ServerType(name="cx23"),
        image=Image(name="debian-12"),
        location=here,
        ssh_keys=[key],
        firewalls=[fw],
        labels={"managed-by": "fatctl"},
        public_net=ServerCreatePublicNetwork(ipv4=v4, ipv6=v6),
    )
    create_s = time.perf_counter() - started
    resp.action.wait_until_finished()
    hc.servers.get_by_id(resp.server.id)
    list(cf.dns.records.list(zone_id=zone, name={"exact": f"{name}.sandbox.test"}))
    for rtype, content in (("A", v4.ip), ("AAAA", v6.ip.split("/")[0] + "1")):
        cf.dns.records.create(
            zone_id=zone,
            name=name,
            type=rtype,
            content=content,
            ttl=60,
            tags=["owner:fatctl"],
            comment=f"fatctl agent {name}",
        )
    return create_s


class Remote:
    """The few handle methods the benchmark uses, for an emulator in another process."""

    def __init__(self, spawned: Spawned) -> None:
        self.spawned = spawned
        self.url, self.token = spawned.info["url"], spawned.info["token"]

    def zone_id(self, name: str) -> str:
        return str(self.spawned.info["zones"][name])

    def stats(self) -> dict:
        return httpx.get(f"{self.spawned.info['admin_url']}/stats").json()

    def reset_stats(self) -> None:
        httpx.post(f"{self.spawned.info['admin_url']}/stats/reset")

    def stop(self) -> None:
        self.spawned.stop()


def in_process(state: Path, delay: float) -> tuple:
    return (
        start_emulator(state / "h", action_delay=delay, rate_limit=10**6),
        start_cloudflare_emulator(state / "c", rate_limit=10**6),
    )


def spawned(state: Path, delay: float) -> tuple:
    het = spawn_emulator(
        "hetzner", state / "h", "--action-delay", str(delay), "--rate-limit", str(10**6)
    )
    cfe = spawn_emulator("cloudflare", state / "c", "--rate-limit", str(10**6))
    return Remote(het), Remote(cfe)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--action-delay", type=float, default=0.2)
    parser.add_argument("--processes", action="store_true")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="fatctl-bench-"))
    het, cfe = (spawned if args.processes else in_process)(state, args.action_delay)
    try:
        hc = Client(token=het.token, api_endpoint=het.url, poll_interval=0.1)
        cf = Cloudflare(api_token=cfe.token, base_url=cfe.url, max_retries=0)
        rule = FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["0.0.0.0/0"])
        fw = hc.firewalls.create(name="agents", rules=[rule]).firewall
        key = hc.ssh_keys.create(name="ops", public_key=KEY)
        het.reset_stats()
        began = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            creates = list(
                pool.map(
                    lambda i: provision(i, hc, cf, cfe.zone_id("sandbox.test"), fw, key),
                    range(args.agents),
                )
            )
        wall = time.perf_counter() - began
        report(args, wall, creates, het.stats(), cfe.stats())
        listed = time.perf_counter()
        everything = hc.servers.get_all(label_selector="managed-by=fatctl")
        print(
            f"list all servers          {(time.perf_counter() - listed) * 1000:8.1f} ms"
            f"   ({len(everything)} servers, 50 per page, as reconcile does)"
        )
    finally:
        het.stop()
        cfe.stop()


def report(args, wall: float, creates: list[float], hs: dict, cs: dict) -> None:
    polls = sum(v for k, v in hs["calls"].items() if "/actions/" in k and k.startswith("GET"))
    n = args.agents
    mode = "separate processes" if args.processes else "in-process"
    print(f"agents={n} workers={args.workers} action_delay={args.action_delay}s emulators={mode}")
    print(f"wall time                 {wall:8.2f} s   ({wall / n * 1000:.1f} ms per agent)")
    print(f"hetzner requests          {hs['total']:8d}   ({hs['total'] / wall:.0f} req/s)")
    print(f"hetzner calls/provision   {(hs['total'] - polls) / n:8.2f}   (+{polls / n:.2f} polls)")
    print(f"cloudflare calls/prov.    {cs['total'] / n:8.2f}")
    q = statistics.quantiles(creates, n=20)
    print(
        f"server create latency     p50 {statistics.median(creates) * 1000:.1f} ms"
        f"  p95 {q[18] * 1000:.1f} ms  max {max(creates) * 1000:.1f} ms"
    )
    print(f"429s received             {hs['rate_limited'] + cs['rate_limited']:8d}")


if __name__ == "__main__":
    main()
