"""Pure builders for one box's boot: its on-disk layout, NoCloud seed and nspawn command line.

Disk: the golden image is the read-only lower layer of an overlay whose upper dir belongs to the
box. The overlay is mounted in a private mount namespace that `systemd-nspawn` is exec'd into,
so the mount dies with the box process (nothing leaks on the host, even on SIGKILL), while the
upper dir persists on disk: like a real server's disk, the box keeps its files across power
off/on and reboot. Why not the alternatives: `--volatile=overlay` loses every write at power
off; `--ephemeral`/`--template` copy the ~2 GB image per box; nspawn's `--overlay=` cannot
overlay `/` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fatctl.sandbox.chroot import private_mounts

SEED_MOUNT = "/var/lib/cloud/seed/nocloud"

# Mount the box's overlay, then become nspawn. $1 lower, $2 upper, $3 work, $4 merged root.
_MOUNT_THEN_BOOT = (
    'set -e; mount -t overlay fatbox -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4"; '
    'shift 3; exec systemd-nspawn -D "$@"'
)


@dataclass(frozen=True)
class BoxPaths:
    """Where one box lives on the host, all under its own directory."""

    root: Path

    @property
    def upper(self) -> Path:
        return self.root / "disk"

    @property
    def work(self) -> Path:
        return self.root / "overlay-work"

    @property
    def merged(self) -> Path:
        return self.root / "rootfs"

    @property
    def seed(self) -> Path:
        return self.root / "seed"

    @property
    def record(self) -> Path:
        return self.root / "box.json"

    @property
    def console(self) -> Path:
        return self.root / "console.log"


def meta_data(instance_id: str, hostname: str) -> str:
    """NoCloud meta-data; the instance id stays fixed for the box's life, so cloud-init runs
    its per-instance modules once, not at every boot."""
    return f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"


def machine_name(server_id: int) -> str:
    return f"fatbox-{server_id}"


def boot_cmd(paths: BoxPaths, image: Path, netns_path: Path, server_id: int) -> list[str]:
    """The argv that mounts the box's disk privately and boots it with nspawn."""
    nspawn_args = [
        str(paths.merged),
        f"--machine={machine_name(server_id)}",
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path={netns_path}",
        # nspawn grants CAP_NET_ADMIN only with networks it creates itself; the box owns its
        # namespace and its firewall (nftables) must load as on a real server.
        "--capability=CAP_NET_ADMIN",
        f"--bind-ro={paths.seed}:{SEED_MOUNT}",
        # rclone mounts /data with FUSE inside the box.
        "--bind=/dev/fuse",
        "--resolv-conf=off",
        "--link-journal=no",
        "--timezone=off",
        "--console=read-only",
        # SIGTERM to nspawn powers the box off cleanly (the default would be a halt).
        "--kill-signal=SIGRTMIN+4",
        "--boot",
    ]
    script = ["sh", "-c", _MOUNT_THEN_BOOT, "fatbox", str(image), str(paths.upper)]
    return private_mounts([*script, str(paths.work), *nspawn_args])


def nsenter_cmd(leader_pid: int, argv: list[str]) -> list[str]:
    """Run `argv` inside the box as root, with a clean environment (no host variables leak)."""
    env = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    return ["nsenter", "-t", str(leader_pid), "-a", "--", *env, "LANG=C.UTF-8", *argv]
