"""`fatctl image build|list`: golden Hetzner snapshots with the runtime preinstalled."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from fatctl.cli.options import JsonOpt
from fatctl.cli.output import Output

if TYPE_CHECKING:
    from fatctl.config import Settings
    from fatctl.services.image.build import BuildOptions

app = typer.Typer(
    help="Golden images: snapshots with a runtime version preinstalled (build, list).",
    no_args_is_help=True,
)

LIST_COLUMNS = ("image_id", "runtime", "node", "base", "architecture", "created", "status")


@app.command("build")
def build_cmd(
    version: Annotated[str, typer.Option("--version", help="OpenClaw version to preinstall.")],
    node: Annotated[str, typer.Option("--node", help="Node version.")] = "24.21.0",
    base: Annotated[str, typer.Option("--base", help="Stock image to start from.")] = "",
    server_type: Annotated[str, typer.Option("--server-type", help="Builder type.")] = "",
    location: Annotated[str, typer.Option("--location", help="Builder location.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Build a golden snapshot: builder from a stock image, install, clean, snapshot, delete."""
    from fatctl.cli.context import ctx
    from fatctl.infra.hcloud.images import GoldenImages
    from fatctl.remote.runner import connect
    from fatctl.services.image.build import build_golden, record_build
    from fatctl.services.image.recipe import GoldenRecipe, builder_name

    c = ctx()
    s = c.settings
    recipe = GoldenRecipe(version, node, base or s.image, server_type or s.image_build_type,
                          location or s.location)  # fmt: skip
    opts = _build_options(s)
    out = Output(json_out)
    cloud = GoldenImages(s)
    result = record_build(
        c.engine, c.actor, recipe, builder_name(recipe, opts.stamp),
        lambda: build_golden(cloud, connect, recipe, opts, out.event),
    )  # fmt: skip
    out.record(
        {"image_id": result.image_id, "runtime": result.runtime_version,
         "reported": result.reported_version, "builder": result.builder,
         "labels": ",".join(f"{k}={v}" for k, v in recipe.labels.items()),
         "elapsed_s": result.elapsed_s},
        title="golden image built",
    )  # fmt: skip


def _build_options(s: Settings) -> BuildOptions:
    """SSH to the builder as the operator (key file required: its public half goes in)."""
    from fatctl.remote.runner import load_public_key
    from fatctl.services.common.targets import _port, jump_target
    from fatctl.services.image.build import BuildOptions

    key_file = s.require("operator_key_file")
    return BuildOptions(operator_key=load_public_key(key_file), key_file=key_file,
                        ssh_port=_port(s.ssh_port, "ssh_port"), clean_seed=not s.in_sandbox,
                        stamp=time.strftime("%Y%m%d%H%M%S"),
                        jump=jump_target(s, key_file))  # fmt: skip


@app.command("list")
def list_cmd(
    version: Annotated[str, typer.Option("--version", help="Only this runtime version.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Golden snapshots at Hetzner, newest first (recorded ones deleted there are marked gone)."""
    from fatctl.cli.context import ctx
    from fatctl.infra.hcloud.images import GoldenImages
    from fatctl.services.image.build import mark_gone
    from fatctl.services.image.recipe import golden_selector

    refs = GoldenImages(ctx().settings).list(golden_selector(version))
    gone = mark_gone(ctx().engine, {r.image_id for r in refs}, version)
    rows = []
    for ref in refs:
        labels = dict(ref.labels)
        rows.append({"image_id": ref.image_id, "runtime": labels.get("runtime", ""),
                     "node": labels.get("node", ""), "base": labels.get("base", ""),
                     "architecture": ref.architecture, "created": ref.created,
                     "status": ref.status})  # fmt: skip
    out = Output(json_out)
    out.table(rows, LIST_COLUMNS, title="golden images",
              json_payload={"images": rows, "marked_gone": gone})  # fmt: skip
    if gone and not json_out:
        out.message(f"recorded but deleted at Hetzner, now marked gone: {', '.join(gone)}")


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="image")
