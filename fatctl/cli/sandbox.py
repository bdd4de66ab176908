"""`fatctl sandbox up|down|status`: the local cloud (fatctl.sandbox.cloud). Thin: parse, call,
render. `up` prints how to point fatctl at it (source its env file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import JsonOpt
from fatctl.cli.output import Output

app = typer.Typer(
    help="The local sandbox cloud (emulators, S3, nspawn boxes).", no_args_is_help=True
)


def _state() -> Path:
    from fatctl.sandbox.cloud import sandbox_dir

    return sandbox_dir(ctx().settings.data_dir)


@app.command("up")
def up(
    boxes: Annotated[
        bool, typer.Option("--boxes/--no-boxes", help="Real nspawn boxes (root) or API only.")
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """Start the emulators, S3 and (as root) the box driver; write sandbox.env."""
    from fatctl.sandbox.cloud import ENV_FILE
    from fatctl.sandbox.cloud import up as run

    state = _state()
    env = run(state, boxes=boxes)
    path = state / ENV_FILE
    out = Output(json_out)
    if json_out:
        out.data({"env_file": str(path), "boxes": boxes, "domain": env["FATCTL_DOMAIN"]})
        return
    out.message(f"sandbox up ({'with nspawn boxes' if boxes else 'API only'}); settings in {path}")
    out.message(f"use it:  set -a; . {path}; set +a")
    out.message(f"then:    fatctl keys add --operator --file {env['FATCTL_OPERATOR_KEY_FILE']}.pub")


@app.command("down")
def down(json_out: JsonOpt = False) -> None:
    """Stop everything `up` started (by pid) and delete the boxes."""
    from fatctl.sandbox.cloud import down as run

    stopped = run(_state())
    out = Output(json_out)
    if json_out:
        out.data({"stopped": stopped})
    else:
        out.message("stopped: " + (", ".join(stopped) or "nothing was running"))


@app.command("status")
def status(json_out: JsonOpt = False) -> None:
    """What of the sandbox runs now."""
    from fatctl.sandbox.cloud import status as run

    rows = [{"component": c.name, "pid": c.pid or "-", "url": c.url or "(stopped)"}
            for c in run(_state())]  # fmt: skip
    Output(json_out).table(rows, ("component", "pid", "url"), title="sandbox")
