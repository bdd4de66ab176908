"""`fatctl version` (and `fatctl --version`): what this fatctl is and what it would install.

Read from package metadata and constants only: no SDK is imported (an SDK's version comes from
its installed distribution), so the command stays as fast as `--help`.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from fatctl.cli.context import ctx
from fatctl.cli.options import JsonOpt
from fatctl.cli.output import Output

# The distributions whose versions decide how fatctl talks to clouds, boxes and databases.
SDKS = (
    "hcloud", "pulumi", "pulumi-hcloud", "cloudflare", "paramiko", "sqlmodel", "sqlalchemy",
    "alembic", "httpx", "typer", "dbos", "fastapi",
)  # fmt: skip


def installed(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def database_revision(url: str) -> str:
    """The schema revision stamped in the configured database, without creating one."""
    from fatctl.errors import FatctlError
    from fatctl.state.rawdb import connect, dialect, sqlite_path, stamped_revision

    if dialect(url) == "sqlite" and not Path(sqlite_path(url)).exists():
        return "not created"
    try:
        with connect(url) as conn:
            return stamped_revision(conn) or "not migrated"
    except FatctlError:
        return "unreachable"


def version(json_out: JsonOpt = False) -> None:
    """fatctl's version, the pinned runtime and Node, the schema revision and SDK versions."""
    from fatctl.domain import AgentSpec
    from fatctl.state.db import HEAD_REVISION

    fields = AgentSpec.__dataclass_fields__
    settings = ctx().settings
    row = {
        "fatctl": installed("fatctl"),
        "openclaw": settings.runtime_version,
        "openclaw_pinned": fields["runtime_version"].default,
        "node": fields["node_version"].default,
        "schema": HEAD_REVISION,
        "database_schema": database_revision(settings.database_url),
    }
    if json_out:
        Output(True).data({**row, "sdks": {name: installed(name) for name in SDKS}})
        return
    Output(False).record({**row, **{name: installed(name) for name in SDKS}}, title="fatctl")
