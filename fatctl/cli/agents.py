"""`fatctl agents create|list|show|delete`: the database side of agents."""

from __future__ import annotations

from typing import Annotated

import typer

from fatctl.cli.context import confirm, ctx
from fatctl.cli.options import (
    AgentArg,
    BaseUrlOpt,
    ImageOpt,
    JsonOpt,
    LocationOpt,
    ModelOpt,
    OwnerOpt,
    PlanOpt,
    ServerTypeOpt,
    YesOpt,
    agent_arg,
    agent_lease,
)
from fatctl.cli.output import Output

app = typer.Typer(help="Agents known to fatctl (one box each).", no_args_is_help=True)

LIST_COLUMNS = ("name", "state", "owner", "type", "location", "runtime", "ipv4")


@app.command("create")
def create(
    name: Annotated[
        str | None, typer.Argument(help="Agent name; a friendly one if omitted.")
    ] = None,
    owner: OwnerOpt = "",
    plan: PlanOpt = "managed",
    server_type: ServerTypeOpt = None,
    location: LocationOpt = None,
    image: ImageOpt = None,
    runtime: Annotated[str | None, typer.Option("--runtime", help="OpenClaw version.")] = None,
    model: ModelOpt = "",
    base_url: BaseUrlOpt = "",
    json_out: JsonOpt = False,
) -> None:
    """Record a new agent (state `requested`) with its host key and gateway token."""
    from fatctl.errors import BadInput
    from fatctl.services.agents.records import NewAgent, create_agent

    if not owner:
        raise BadInput("--owner EMAIL is required")
    s = ctx().settings
    request = NewAgent(
        name=name,
        owner_email=owner,
        plan=plan,
        server_type=server_type or s.server_type,
        location=location or s.location,
        image=image or s.image,
        runtime_version=runtime or s.runtime_version,
        model=model,
        model_base_url=base_url,
    )
    request = request.validated()  # bad input fails before the database or master key is touched
    agent = create_agent(ctx().engine, ctx().keyring, request, ctx().actor)
    Output(json_out).record(
        {"name": agent.name, "agent_id": agent.agent_id, "state": agent.state},
        title=f"created agent {agent.name}",
    )


@app.command("list")
def list_(
    state: Annotated[list[str] | None, typer.Option("--state", help="Filter by state.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List agents."""
    from fatctl.domain import AgentState
    from fatctl.state.fastread import list_agent_rows
    from fatctl.validation import one_of

    known = frozenset(s.value for s in AgentState)
    state = [one_of("state", s, known) for s in state or ()]
    rows = list_agent_rows(ctx().database_url, states=tuple(state or ()))
    Output(json_out).table(rows, LIST_COLUMNS, title="agents")


@app.command("show")
def show(
    name: AgentArg,
    json_out: JsonOpt = False,
) -> None:
    """Everything the database knows about one agent (no secret values)."""
    from fatctl.state import repo, secret_store
    from fatctl.state.db import session_scope

    name = agent_arg(name) or ""
    with session_scope(ctx().engine) as session:
        agent = repo.get_agent(session, name)
        owner = repo.owner_of(session, agent)
        item = agent.model_dump(exclude={"id", "owner_id"})
        item["owner"] = owner.email
        item["plan"] = owner.plan
        item["host_keys"] = [hk.fingerprint for hk in repo.host_keys(session, agent)]
        item["secrets"] = [s.name for s in secret_store.names(session, agent_pk=agent.id)]
    Output(json_out).record(item, title=f"agent {name}")


@app.command("delete")
def delete(
    name: AgentArg,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also forget an agent stuck in `destroying` (its destroy failed and cannot "
            "finish); what is left at the clouds stays there, for `fatctl reconcile`.",
        ),
    ] = False,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Forget an agent that owns no cloud resources (requested or destroyed); with --force, also
    one stuck `destroying` whose destroy cannot finish (rerun `fatctl destroy` first)."""
    from fatctl.services.agents.records import delete_agent

    name = agent_arg(name) or ""
    engine = ctx().engine
    question = f"Delete agent {name} from the database?"
    if force:
        question = (f"Forget agent {name} even if it is stuck destroying (its server, IPs and "
                    f"DNS records may remain at the clouds)?")  # fmt: skip
    confirm(question, yes)
    with agent_lease(name):  # never under a provision that is still starting on it
        delete_agent(engine, name, ctx().actor, force=force)
    Output(json_out).record({"name": name, "deleted": True}, title=f"deleted agent {name}")
