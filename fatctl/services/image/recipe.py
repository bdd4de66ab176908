"""What a golden Hetzner image is made of, as data: the builder's user-data, the commands run
on it over SSH, the labels the snapshot carries and the selector that finds it again.

Pure (no SDK, no I/O). The install steps are the ones every other path uses: the Debian
packages of `cloud_init.packages` and the script of `cloud_init.render.render_install_script`
(the stock-image first boot and the sandbox's image builder run that same script).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import yaml

from cloud_init import layout as L
from cloud_init.inputs import IMAGES, check_version
from cloud_init.packages import packages_for_image
from cloud_init.render import render_install_script
from fatctl import validation
from fatctl.domain import HostKeyPair, architecture_of, managed_labels
from fatctl.errors import BadInput
from fatctl.infra.selector import Selector, managed

PACKAGES_SCRIPT = "/usr/local/sbin/fat-image-packages"
ROLE = "golden"
BUILDER_ROLE = "image-builder"


@dataclass(frozen=True)
class GoldenRecipe:
    """One golden image: the runtime it carries, the stock image and builder it starts from."""

    runtime_version: str
    node_version: str
    base_image: str = "debian-12"
    server_type: str = "cx23"
    location: str = "fsn1"

    def __post_init__(self) -> None:
        check_version("runtime version", self.runtime_version)
        check_version("node version", self.node_version)
        validation.server_type(self.server_type)
        validation.location(self.location)
        if self.base_image not in IMAGES:
            known = ", ".join(sorted(IMAGES))
            raise BadInput(f"base image {self.base_image!r} is not one of {known}")

    @property
    def architecture(self) -> str:
        return architecture_of(self.server_type)

    @property
    def labels(self) -> dict[str, str]:
        """What the snapshot is labelled with at Hetzner (and looked up by)."""
        return managed_labels(
            role=ROLE, runtime=self.runtime_version, node=self.node_version, base=self.base_image
        )

    @property
    def description(self) -> str:
        return (
            f"fatctl golden: openclaw {self.runtime_version}, node {self.node_version}, "
            f"from {self.base_image}"
        )


def golden_selector(runtime_version: str = "", base_image: str = "") -> Selector:
    """Finds golden images at Hetzner: all, or those of a runtime version / stock image."""
    terms = {"role": ROLE}
    terms |= {"runtime": runtime_version} if runtime_version else {}
    terms |= {"base": base_image} if base_image else {}
    return managed(**terms)


def builder_name(recipe: GoldenRecipe, stamp: str) -> str:
    """A hostname: the versions' dots become dashes; `stamp` keeps parallel builds apart."""
    return f"fatctl-image-{recipe.runtime_version.replace('.', '-')}-{stamp}"[:63]


def builder_labels(recipe: GoldenRecipe) -> dict[str, str]:
    return managed_labels(role=BUILDER_ROLE, runtime=recipe.runtime_version)


def packages_script(base_image: str) -> str:
    """Install the box packages that the image lacks (none missing: no network needed)."""
    names = " ".join(shlex.quote(p) for p in packages_for_image(base_image))
    return f"""#!/bin/bash
# fat-image-packages: the box packages for a golden image (rendered by fatctl).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
missing=()
for pkg in {names}; do
  status="$(dpkg-query -W -f='${{db:Status-Status}}' "$pkg" 2>/dev/null || true)"
  if [ "$status" != installed ]; then
    missing+=("$pkg")
  fi
done
if [ "${{#missing[@]}}" -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${{missing[@]}}"
fi
"""


class _Literal(str):
    """A string dumped as a YAML block scalar (`|`), so scripts stay readable."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> Any:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def builder_user_data(recipe: GoldenRecipe, operator_key: str, host_key: HostKeyPair) -> str:
    """The builder's `#cloud-config`: root reachable with the operator's key behind a pinned
    host key, and the install steps run by `runcmd` (packages, then the runtime)."""
    install = render_install_script(recipe.runtime_version, recipe.node_version)
    files = [
        ("/root/.ssh/authorized_keys", "0600", _Literal(operator_key.strip() + "\n")),
        (PACKAGES_SCRIPT, "0755", _Literal(packages_script(recipe.base_image))),
        (L.INSTALL_SCRIPT, "0755", _Literal(install)),
    ]
    doc = {
        "disable_root": False,
        "ssh_pwauth": False,
        "ssh_deletekeys": True,
        "ssh_keys": {
            "ed25519_private": _Literal(host_key.private_key_pem.strip() + "\n"),
            "ed25519_public": host_key.public_key,
        },
        "write_files": [{"path": p, "permissions": m, "content": c} for p, m, c in files],
        "runcmd": [[PACKAGES_SCRIPT], [L.INSTALL_SCRIPT]],
    }
    head = f"#cloud-config\n# fatctl image builder: {recipe.description}.\n"
    return head + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000)


def wait_command() -> str:
    """Waits for cloud-init (so for `runcmd`'s install steps); its exit code says how it went."""
    return "cloud-init status --wait --long"


def verify_command(recipe: GoldenRecipe) -> str:
    """Fails unless the image's `current` runtime is the wanted one and it runs."""
    want = shlex.quote(recipe.runtime_version)
    return (
        f'test "$(readlink {L.RUNTIME_ROOT}/current)" = {want}'
        f" && {L.RUNTIME_ROOT}/current/bin/openclaw --version"
    )


def cleanup_command(*, clean_seed: bool = True) -> str:
    """Forget what made the builder a particular machine, so every box from the image boots
    as a new server: our key, host keys, cloud-init's state and logs, the machine id."""
    seed = " --seed" if clean_seed else ""
    steps = [
        "set -eu",
        f"rm -f /root/.ssh/authorized_keys {PACKAGES_SCRIPT}",
        "rm -f /etc/ssh/ssh_host_*",
        f"cloud-init clean --logs{seed}",
        "truncate -s 0 /etc/machine-id",
        "rm -f /var/lib/dbus/machine-id",
        "apt-get clean",
        "rm -rf /tmp/* /var/tmp/*",
        "sync",
    ]
    return "\n".join(steps)
