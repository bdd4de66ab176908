"""`fatctl image build`: a golden Hetzner snapshot with a runtime version preinstalled.

The sequence: a builder server from a stock image whose user-data runs the install steps
(`image.recipe`); over SSH with a pinned host key, wait for cloud-init, check the runtime,
remove what made the builder a particular machine; shut it down, snapshot it with labels,
and delete the builder, also when any step failed. Each build is recorded (the
`golden_images` table and the audit trail); the labels are how provisioning finds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fatctl.errors import FatctlError, RemoteError
from fatctl.pacing.poll import Backoff
from fatctl.remote.target import Target
from fatctl.services.agents.material import generate_host_key
from fatctl.services.image.recipe import (
    GoldenRecipe,
    builder_labels,
    builder_name,
    builder_user_data,
    cleanup_command,
    verify_command,
    wait_command,
)
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from fatctl.infra.hcloud.images import Builder
    from fatctl.remote.runner import Result
    from fatctl.remote.target import Target

Emit = Callable[..., None]


class ImageBuildFailed(FatctlError):
    exit_code = 1


class Shell(Protocol):
    """A command runner on the builder (an SSH connection in production)."""

    def run(self, command: str, *, timeout: float | None = None) -> Result: ...

    def close(self) -> None: ...


class ImageCloud(Protocol):
    """The Hetzner side (`fatctl.infra.hcloud.images.GoldenImages`)."""

    def create_builder(
        self, name: str, server_type: str, location: str, image: str, user_data: str,
        labels: dict[str, str],
    ) -> Builder: ...  # fmt: skip

    def shutdown(self, server_id: str, timeout: float) -> None: ...

    def snapshot(self, server_id: str, description: str, labels: dict[str, str]) -> str: ...

    def delete_server(self, server_id: str) -> bool: ...


@dataclass(frozen=True)
class BuildOptions:
    operator_key: str  # public line, let into the builder's root account
    key_file: str | None  # its private half (None: the SSH agent)
    ssh_port: int = 22
    backoff: Backoff = field(default_factory=lambda: Backoff(timeout=600.0))
    install_timeout: float = 1800.0
    shutdown_timeout: float = 120.0
    clean_seed: bool = True  # the sandbox's NoCloud seed is a read-only mount: it keeps it
    stamp: str = ""
    jump: Target | None = None  # the operators' bastion, as for agents' boxes


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    builder: str
    runtime_version: str
    reported_version: str
    elapsed_s: float


def _check(result: Result, what: str, name: str) -> Result:
    if result.ok:
        return result
    lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
    why = result.error or (lines[-1][:200] if lines else "no output")
    raise ImageBuildFailed(f"builder {name}: {what} failed (exit {result.exit_code}): {why}")


def _wait_ssh(connect: Callable[[Target], Shell], target: Target, backoff: Backoff) -> Shell:
    last = [""]

    def probe() -> Shell | None:
        try:
            return connect(target)
        except RemoteError as exc:
            last[0] = exc.one_line()
            return None

    try:
        return backoff.wait_for(f"SSH on {target.label()}", probe)
    except FatctlError as exc:
        raise ImageBuildFailed(f"{exc.one_line()} (last: {last[0]})") from None


def _prepare(shell: Shell, recipe: GoldenRecipe, opts: BuildOptions, name: str, emit: Emit) -> str:
    """The install steps' outcome, checked; then the builder's identity removed."""
    _check(shell.run(wait_command(), timeout=opts.install_timeout), "cloud-init", name)
    emit("installed", builder=name)
    version = _check(shell.run(verify_command(recipe), timeout=60), "runtime check", name)
    _check(shell.run(cleanup_command(clean_seed=opts.clean_seed), timeout=300), "cleanup", name)
    emit("cleaned", builder=name)
    return version.stdout.strip()


def _target(builder: Builder, host_key: str, opts: BuildOptions) -> Target:
    return Target(name=builder.name, host=builder.ipv4, port=opts.ssh_port, user="root",
                  host_keys=(host_key,), key_file=opts.key_file,
                  use_agent=opts.key_file is None, jump=opts.jump)  # fmt: skip


def build_golden(
    cloud: ImageCloud,
    connect: Callable[[Target], Shell],
    recipe: GoldenRecipe,
    opts: BuildOptions,
    emit: Emit,
) -> BuildResult:
    """Build, snapshot, and always delete the builder; ImageBuildFailed names the step."""
    from fatctl.infra.hcloud.images import BuilderFailed

    started = time.monotonic()
    name = builder_name(recipe, opts.stamp or time.strftime("%Y%m%d%H%M%S"))
    host_key = generate_host_key(f"fatctl-builder-{name}").pair
    user_data = builder_user_data(recipe, opts.operator_key, host_key)
    server_id = ""
    failed = True
    try:
        try:
            builder = cloud.create_builder(name, recipe.server_type, recipe.location,
                                           recipe.base_image, user_data,
                                           builder_labels(recipe))  # fmt: skip
        except BuilderFailed as exc:
            server_id = exc.server_id
            raise
        server_id = builder.server_id
        emit("builder", builder=name, server_id=server_id, ipv4=builder.ipv4)
        shell = _wait_ssh(connect, _target(builder, host_key.public_key, opts), opts.backoff)
        try:
            reported = _prepare(shell, recipe, opts, name, emit)
        finally:
            shell.close()
        cloud.shutdown(server_id, opts.shutdown_timeout)
        image_id = cloud.snapshot(server_id, recipe.description, recipe.labels)
        emit("snapshot", builder=name, image_id=image_id)
        failed = False
    finally:
        if server_id:
            _delete_builder(cloud, server_id, name, emit, failed)
    return BuildResult(image_id, name, recipe.runtime_version, reported,
                       round(time.monotonic() - started, 1))  # fmt: skip


def _delete_builder(cloud: ImageCloud, server_id: str, name: str, emit: Emit, failed: bool) -> None:
    """Delete the builder; when the build already failed, that failure is the one reported."""
    try:
        cloud.delete_server(server_id)
        emit("builder.deleted", builder=name, server_id=server_id)
    except FatctlError as exc:
        if not failed:
            raise ImageBuildFailed(
                f"image built, but deleting builder {name} (server {server_id}) failed: "
                f"{exc.one_line()}; delete it by hand"
            ) from None
        emit("builder.left", builder=name, server_id=server_id, error=exc.one_line())


def record_build(
    db: Any, actor: str, recipe: GoldenRecipe, builder: str, run: Callable[[], BuildResult]
) -> BuildResult:
    """Run a build with its `golden_images` row and audit event, failures included."""
    from fatctl.state import repo
    from fatctl.state.models import GoldenImage, utcnow

    with session_scope(db) as session:
        row = GoldenImage(runtime_version=recipe.runtime_version, node_version=recipe.node_version,
                          base_image=recipe.base_image, architecture=recipe.architecture,
                          builder=builder, state="building", actor=actor)  # fmt: skip
        session.add(row)
        session.flush()
        row_id = row.id
    result: BuildResult | None = None
    error = ""
    try:
        result = run()
        return result
    except FatctlError as exc:
        error = exc.one_line()
        raise
    finally:
        with session_scope(db) as session:
            found = session.get(GoldenImage, row_id)
            assert found is not None
            found.state = "available" if result else "failed"
            found.image_id = result.image_id if result else ""
            found.error, found.finished_at = error[:500], utcnow()
            session.add(found)
            repo.audit(session, actor=actor, action="image.build",
                       target=f"golden:{recipe.runtime_version}",
                       result="ok" if result else "failed",
                       detail={"image_id": found.image_id, "error": error[:300]})  # fmt: skip


def mark_gone(db: Any, present: set[str], runtime_version: str = "") -> list[str]:
    """Recorded available images that Hetzner no longer lists become `gone`, so provisioning
    stops choosing them; returns their ids. `present` must be every golden image listed (for
    `runtime_version` when given)."""
    from sqlmodel import select

    from fatctl.state.models import GoldenImage

    gone = []
    with session_scope(db) as session:
        query = select(GoldenImage).where(GoldenImage.state == "available")
        if runtime_version:
            query = query.where(GoldenImage.runtime_version == runtime_version)
        for row in session.exec(query).all():
            if row.image_id not in present:
                row.state = "gone"
                session.add(row)
                gone.append(row.image_id)
    return gone
