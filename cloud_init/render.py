"""Rendering of a box's user-data and files: pure functions of an `AgentSpec`.

`render_files` is every file the box gets (the converge flow re-applies it over SSH);
`render_user_data` wraps those files into the `#cloud-config` Hetzner passes at creation;
`render_install_script` is the one Node + OpenClaw install script, shared with the image builders.
"""

from __future__ import annotations

from cloud_init.environment import render
from cloud_init.packages import NODE_INTEGRITY, NPM_INTEGRITY, NPM_VERSION


def render_install_script(runtime_version: str, node_version: str) -> str:
    """The bash script installing Node `node_version` and OpenClaw `runtime_version`.

    Idempotent and chroot-safe; Node's tarball is checked against the pinned sha512 (or the
    registry's `dist.integrity` for versions not pinned in `cloud_init.packages`).
    """
    return render(
        "install-runtime.sh.j2",
        runtime_version=runtime_version,
        node_version=node_version,
        node_integrity=NODE_INTEGRITY.get(node_version, ""),
        npm_version=NPM_VERSION,
        npm_integrity=NPM_INTEGRITY,
    )
