"""Start and stop the whole sandbox cloud: Hetzner and Cloudflare emulators, moto S3, the
outside world's stand-ins (a model provider and Telegram's Bot API: `fatctl.sandbox.world`) and
(as root) real nspawn boxes behind the Hetzner emulator, all as background processes recorded by
pid under one state dir (default `<data dir>/sandbox`).

`up` writes `<state dir>/sandbox.env` (mode 0600): the settings that point fatctl at the
sandbox. Use it with `set -a; . <state dir>/sandbox.env; set +a`. It sets `FATCTL_SANDBOX=1`,
which tells provisioning the boxes boot the golden image and serve HTTPS with Caddy's internal CA.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fatctl.errors import FatctlError
from fatctl.private_paths import private_dir
from fatctl.sandbox import image, netns
from fatctl.sandbox.apiemu.spawn import find_emulator, spawn_emulator, stop_emulator
from fatctl.sandbox.box_ca import ensure_ca
from fatctl.sandbox.nspawn_driver import NspawnBoxDriver
from fatctl.sandbox.s3 import s3_status, start_s3, stop_s3

DOMAIN = "sandbox.test"
BUCKET = "fat-agents"
PARENT_KEY_ID = "sandbox-parent-key"  # the sandbox's stand-in for the bucket token's key id
DRIVER = "fatctl.sandbox.nspawn_driver:from_env"
ENV_FILE = "sandbox.env"


class SandboxError(FatctlError):
    exit_code = 1


@dataclass(frozen=True)
class Component:
    name: str
    pid: int
    url: str


def sandbox_dir(data_dir: Path) -> Path:
    return Path(os.environ.get("FATCTL_SANDBOX_DIR") or data_dir / "sandbox")


def _meta(state: Path) -> dict[str, object]:
    try:
        return dict(json.loads((state / "sandbox.json").read_text()))
    except (OSError, ValueError):
        return {}


def up(state: Path, *, boxes: bool, action_delay: float = 0.0) -> dict[str, str]:
    """Start whatever is not running yet; returns the env file's settings (secrets included)."""

    if boxes and os.geteuid() != 0:
        raise SandboxError(
            "sandbox boxes need root (systemd-nspawn, network namespaces): run as root, "
            "or `fatctl sandbox up --no-boxes` for the API emulators alone"
        )
    private_dir(state)  # the sandbox's keys and emulator state: owner-only
    flags = ["--action-delay", str(action_delay)]
    s3_host = "127.0.0.1"
    if boxes:
        s3_host = _prepare_boxes(state)
        flags += ["--driver", DRIVER]
    else:
        (state / "sandbox.json").write_text(json.dumps({"boxes": False}))
    hetzner = find_emulator("hetzner", state / "hetzner") or spawn_emulator(
        "hetzner", state / "hetzner", *flags, timeout=60
    )
    cloudflare = find_emulator("cloudflare", state / "cloudflare") or spawn_emulator(
        "cloudflare", state / "cloudflare", "--zone", DOMAIN
    )
    s3 = start_s3(state / "s3", host=s3_host)
    _make_bucket(s3.url)
    # The model provider and Telegram, where the boxes reach them (the bridge, like S3).
    world = find_emulator("world", state / "world") or spawn_emulator(
        "world", state / "world", "--host", s3_host
    )
    env = {
        "HCLOUD_ENDPOINT": hetzner.info["url"],
        "HCLOUD_TOKEN": hetzner.info["token"],
        "CLOUDFLARE_BASE_URL": cloudflare.info["url"],
        "CLOUDFLARE_API_TOKEN": cloudflare.info["token"],
        "CLOUDFLARE_ACCOUNT_ID": str(cloudflare.info.get("account_id", "")),
        # Known now, so no provisioning process has to look the zone up (issue 5's budget).
        "CLOUDFLARE_ZONE_ID": str(dict(cloudflare.info.get("zones") or {}).get(DOMAIN, "")),
        "FATCTL_DOMAIN": DOMAIN,
        "FATCTL_R2_ENDPOINT": s3.url,
        "FATCTL_R2_BUCKET": BUCKET,
        "FATCTL_R2_PARENT_ACCESS_KEY_ID": PARENT_KEY_ID,
        "FATCTL_ENGINE": "hcloud",
        "FATCTL_POLL_INTERVAL": "0.2",
        "FATCTL_OPERATOR_KEY_FILE": str(operator_key(state)),
        "FATCTL_SANDBOX": "1",
        "FATCTL_MANAGED_MODEL_BASE_URL": world.info["model_base_url"],
        "FATCTL_TELEGRAM_API_ROOT": world.info["telegram_api_root"],
    }
    if boxes:
        # The boxes' HTTPS is verified by the sandbox's own root, at their addresses (a `.test`
        # name resolves nowhere here): `fatctl status` and serve's sweep probe without SSH.
        env["FATCTL_PROBE_CA_FILE"] = str(
            ensure_ca(Path(os.environ["FATCTL_BOX_STATE_DIR"]) / "ca")
        )
        env["FATCTL_PROBE_BY_ADDRESS"] = "1"
    write_env(state / ENV_FILE, env)
    return env


def _prepare_boxes(state: Path) -> str:
    """Golden image (built once, cached), the host bridge, and the driver's environment."""

    rootfs = Path(os.environ.get("FATCTL_BOX_IMAGE") or image.ensure_golden_image(
        image.DEFAULT_RUNTIME, image.DEFAULT_NODE,
        extra_runtime_versions=image.DEFAULT_EXTRA_RUNTIMES))  # fmt: skip
    netns.ensure_bridge()
    # The Hetzner emulator process inherits these and builds its NspawnBoxDriver from them.
    os.environ["FATCTL_BOX_STATE_DIR"] = str(state / "boxes")
    os.environ["FATCTL_BOX_IMAGE"] = str(rootfs)
    (state / "sandbox.json").write_text(json.dumps({"boxes": True, "image": str(rootfs)}))
    return netns.GATEWAY_IPV4  # boxes reach S3 on the bridge; nothing outside the host does


def _make_bucket(url: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=url, aws_access_key_id="sandbox",
                          aws_secret_access_key="sandbox", region_name="us-east-1")  # noqa: S106  # fmt: skip
    names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET not in names:
        client.create_bucket(Bucket=BUCKET)


def operator_key(state: Path) -> Path:
    """An operator SSH key for the sandbox (made once; its .pub goes to `fatctl keys add`)."""
    key = state / "operator_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fatctl-sandbox-operator",
             "-f", str(key)],
            check=True,
        )  # fmt: skip
    return key


def write_env(path: Path, env: dict[str, str]) -> None:
    """Atomically, mode 0600 (it holds the emulators' tokens)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(f"{k}={v}\n" for k, v in env.items()))
    tmp.replace(path)


def down(state: Path) -> list[str]:
    """Stop what `up` started (by recorded pid), delete the boxes; returns what was stopped."""

    stopped = [n for n in ("hetzner", "cloudflare", "world") if stop_emulator(n, state / n)]
    if stop_s3(state / "s3"):
        stopped.append("s3")
    meta = _meta(state)
    if meta.get("boxes"):
        driver = NspawnBoxDriver(state / "boxes", Path(str(meta["image"])))
        count = len(driver.server_ids())
        driver.delete_all()
        stopped.append(f"boxes ({count})")
        try:
            netns.remove_bridge()
        except FatctlError:  # other boxes (e.g. a test's) still use the shared bridge
            stopped.append("bridge kept (in use)")
    (state / ENV_FILE).unlink(missing_ok=True)
    return stopped


def status(state: Path) -> list[Component]:
    out = []
    for name in ("hetzner", "cloudflare", "world"):
        found = find_emulator(name, state / name)
        out.append(Component(name, found.pid if found else 0, found.info["url"] if found else ""))
    s3 = s3_status(state / "s3")
    out.append(Component("s3", s3.pid if s3 else 0, s3.url if s3 else ""))
    if _meta(state).get("boxes"):
        ids = NspawnBoxDriver(state / "boxes", Path(str(_meta(state)["image"]))).server_ids()
        out.append(Component(f"boxes ({len(ids)})", 0, str(state / "boxes")))
    return out
