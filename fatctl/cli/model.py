"""`fatctl model show|set|key|apply`: the model an agent thinks with and whose key pays for it.

Managed agents use the plan's default model and the platform's provider key (a global secret:
`fatctl secrets set fireworks-api-key`); BYOK agents choose a model and bring their own key.
Every change reaches the running box in the same command (`--dry-run` shows the diff).
"""

from __future__ import annotations

from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import AgentArg, DryRunOpt, JsonOpt, agent_arg
from fatctl.cli.output import Output
from fatctl.cli.serving_io import push_and_show, stdin_lines

app = typer.Typer(help="The model an agent thinks with, and its key.", no_args_is_help=True)


@app.command("show")
def show(agent: AgentArg, json_out: JsonOpt = False) -> None:
    """The agent's plan, model, and where its key comes from (never the key)."""
    from fatctl.domain import ServicePlan
    from fatctl.services.agents.gateway_env import missing_model_key, model_key_scope
    from fatctl.services.common.specs import build_spec
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    agent = agent_arg(agent) or ""
    c = ctx()
    with session_scope(c.engine) as session:
        row = repo.get_agent(session, agent)
        plan = repo.owner_of(session, row).plan
        spec = build_spec(session, row, c.settings)
        item: dict[str, object] = {"agent": agent, "plan": plan, "model": "", "key": ""}
        if spec.model is not None:
            per_agent, name = model_key_scope(spec)
            missing = missing_model_key(session, row.id or 0, spec)
            item["model"] = spec.model.ref
            item["key"] = f"{name} ({'agent' if per_agent else 'platform'})"
            item["key_set"] = missing is None
        elif plan == ServicePlan.BYOK.value:
            item["model"] = "(none chosen: `fatctl model set`)"
    Output(json_out).record(item, title=f"model of {agent}")


@app.command("set")
def set_(
    agent: AgentArg,
    model: Annotated[str, typer.Argument(help="provider/model, or '' for the plan's default.")],
    base_url: Annotated[
        str, typer.Option("--base-url", help="Only for custom/<model>: the OpenAI-compatible API.")
    ] = "",
    plan: Annotated[str, typer.Option("--plan", help="Switch the plan: managed or byok.")] = "",
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Choose the agent's model (and plan); the running box follows."""
    from fatctl.services.serving.changes import set_model

    push_and_show(agent, lambda s, a: set_model(s, a, model, base_url, plan), dry_run, json_out,
                  f"model of {agent}")  # fmt: skip


@app.command("key")
def key(agent: AgentArg, dry_run: DryRunOpt = False, json_out: JsonOpt = False) -> None:
    """Store (or rotate) a BYOK agent's own model key, read from stdin; the box gets it now."""
    from fatctl.services.serving.changes import store_model_key

    value = stdin_lines("model key", 1)[0]
    push_and_show(agent, lambda s, a: store_model_key(s, ctx().keyring, a, value), dry_run,
                  json_out, f"model key of {agent}")  # fmt: skip


@app.command("apply")
def apply(agent: AgentArg, dry_run: DryRunOpt = False, json_out: JsonOpt = False) -> None:
    """Bring the box to what is recorded (e.g. after `secrets set` rotated the platform key)."""
    push_and_show(agent, None, dry_run, json_out, f"applied to {agent}")
