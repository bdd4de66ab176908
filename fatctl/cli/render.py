"""`fatctl render <agent>`: write an agent's user-data and box files to a directory, validated.

Host private keys are replaced by a placeholder, so nothing secret is ever written; the files
are otherwise exactly what the box gets. `--spec-json` renders from a JSON AgentSpec instead of
the database (tests and dry runs without a state database).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import AgentArg, JsonOpt
from fatctl.cli.output import Output

if TYPE_CHECKING:
    from fatctl.domain import AgentSpec


def render(
    name: AgentArg,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory [default: ./render/<agent>].")
    ] = None,
    spec_json: Annotated[
        Path | None, typer.Option("--spec-json", help="Render from this JSON AgentSpec file.")
    ] = None,
    validate: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Run the real validators first.")
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """Render an agent's cloud-init user-data and every file its box gets."""
    from cloud_init.export import write_render
    from cloud_init.render import render_files, render_user_data
    from cloud_init.specjson import redact_host_keys
    from fatctl.cli.options import agent_arg

    name = agent_arg(name) or ""
    spec = redact_host_keys(_load_spec(name, spec_json))
    user_data = render_user_data(spec)
    files = render_files(spec)
    output = Output(json_out)
    if validate:
        _validate(name, user_data, output)
    target = out if out is not None else Path("render") / name
    written = write_render(target, user_data, files)
    output.record(
        {
            "agent": name,
            "out": str(target),
            "user_data_bytes": len(user_data.encode("utf-8")),
            "files": len(written),
            "validated": validate,
        },
        title=f"rendered {name}",
    )


def _validate(name: str, user_data: str, output: Output) -> None:
    """Every problem on its own line, then one failure: nothing is written for a bad render."""
    from cloud_init.validate import validate_user_data
    from fatctl.errors import FatctlError

    problems = validate_user_data(user_data)
    for problem in problems:
        output.message(f"problem: {problem}")
    if problems:
        raise FatctlError(f"rendered user-data for {name} has {len(problems)} problem(s)")


def _load_spec(name: str, spec_json: Path | None) -> AgentSpec:
    from fatctl.errors import BadInput

    if spec_json is None:
        from fatctl.services.common.specs import spec_for_agent

        return spec_for_agent(name, engine=ctx().engine, settings=ctx().settings)
    from cloud_init.specjson import spec_from_json

    try:
        text = spec_json.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read {spec_json}: {exc.strerror}") from exc
    spec = spec_from_json(text)
    if spec.name != name:
        raise BadInput(f"--spec-json describes agent {spec.name!r}, not {name!r}")
    return spec
