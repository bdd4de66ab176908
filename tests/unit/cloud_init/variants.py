"""Spec builders for the cloud-init tests: every variant the issue names, deterministic.

Golden files need byte-stable output, so `FAKE_HOST_KEY` is a fixed PEM-shaped placeholder (no
real key material in the repository); validator tests use real keys from ssh-keygen instead.
"""

from __future__ import annotations

import itertools
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fatctl.domain import AgentSpec, HostKeyPair, R2Location, ServicePlan
from fatctl.serving import DEFAULT_MANAGED_MODEL, model_choice

IMAGES = ("debian-12", "debian-13", "ubuntu-24.04")
OPERATOR_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm9cWAM8hzNQ4m0r6xXn0fqYyWlq2m5hEo0iZ2xK6nT ops@fat"
)
CUSTOMER_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK3rYp8bcsY9sB5t2YFZ3Qm4b6QqgQmV1Rk0v5c3bWb9 me@laptop"
)
FAKE_HOST_KEY = HostKeyPair(
    key_type="ssh-ed25519",
    public_key=(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyForGoldenFilesOnly0000000000000 host"
    ),
    private_key_pem=(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "golden-file-placeholder-not-a-key\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    ),
)
# A public age recipient (its identity was thrown away): boxes with R2 take state backups.
BACKUP_RECIPIENT = "age170kyztvq6k57cxfdewc0eh8g35mcqdrm47aphlsq8shn8v6g9qxsddlvxc"
R2 = R2Location(
    endpoint="https://0123456789abcdef.r2.cloudflarestorage.com",
    bucket="fat-agents",
    prefix="agents/ag-7f3k2/",
)


@dataclass(frozen=True)
class Variant:
    image: str
    golden: bool
    plan: ServicePlan
    customer: bool
    r2: bool = True

    @property
    def id(self) -> str:
        parts = [
            self.image,
            "golden" if self.golden else "stock",
            self.plan.value,
            "customer" if self.customer else "nocustomer",
        ]
        if not self.r2:
            parts.append("nor2")
        return "-".join(parts)


# The full matrix: each image, golden and stock, each plan, with and without customer keys;
# plus storage-less boxes (no R2 configured), which render without the rclone unit.
VARIANTS = [
    Variant(image, golden, plan, customer)
    for image, golden, plan, customer in itertools.product(
        IMAGES, (False, True), tuple(ServicePlan), (False, True)
    )
] + [
    Variant("debian-12", True, ServicePlan.MANAGED, False, r2=False),
    Variant("ubuntu-24.04", False, ServicePlan.BYOK, True, r2=False),
]


def make_spec(variant: Variant, host_keys: tuple[HostKeyPair, ...] = (FAKE_HOST_KEY,)) -> AgentSpec:
    return AgentSpec(
        name="alice",
        agent_id="ag-7f3k2",
        owner_email="alice@example.com",
        plan=variant.plan,
        domain="agents.example.com",
        image=variant.image,
        operator_keys=(OPERATOR_KEY,),
        customer_keys=(CUSTOMER_KEY,) if variant.customer else (),
        host_keys=host_keys,
        r2=R2 if variant.r2 else None,
        backup_recipient=BACKUP_RECIPIENT if variant.r2 else "",
        golden_image=variant.golden,
        tls_internal=variant.golden,
        **serving(variant),
    )


# Managed boxes think with the plan's default and answer nowhere yet; BYOK ones bring a custom
# OpenAI-compatible model and every channel, with senders of each kind (and one channel, Slack,
# without any: its direct messages are refused).
SENDERS = (("email", "alice@example.com"), ("phone", "+4915123456789"), ("telegram", "4242"))


def serving(variant: Variant) -> dict[str, object]:
    if variant.plan == ServicePlan.MANAGED:
        return {"model": model_choice(DEFAULT_MANAGED_MODEL)}
    return {
        "model": model_choice("custom/llama-3.1-8b", "http://10.77.0.1:8080/v1"),
        "channels": ("slack", "telegram", "whatsapp"),
        "senders": SENDERS,
        "telegram_api_root": "http://10.77.0.1:8080" if variant.golden else "",
    }


def real_host_key(directory: Path) -> HostKeyPair:
    """A fresh ed25519 host key from ssh-keygen (the validator tests use real PEM)."""
    path = directory / "ssh_host_ed25519_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "host", "-f", str(path)], check=True
    )
    public = path.with_suffix(".pub").read_text().strip()
    return HostKeyPair("ssh-ed25519", public, path.read_text())
