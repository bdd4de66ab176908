"""Provision and destroy as DBOS workflows over the existing recorded flows.

Each workflow has one step, and that step is the CLI's own flow (`provision.flow.provision`,
`provision.destroy.destroy`): the flow keeps state in memory between its recorded steps (the
spec, the user-data, the SSH pool), so DBOS replaying finished sub-steps would skip setting it.
Instead, when a process dies mid-flow, DBOS recovers the workflow and runs the step again, and
the flow continues after the last side effect it recorded (`Agent.last_step`, infra and DNS
adopted by labels): exactly one of each resource. The step retries a lease another run holds
or a cloud error, as a person rerunning `fatctl provision` would.

Inputs and outputs are plain JSON (the request as fields, the result as a dict), so a stored
workflow reads the same to the next fatctl version. Workflow ids come from the agent and its
row id (`provision-<name>-<id>`): a retried start attaches to the running workflow instead of
starting a second one, and a new agent of a reused name gets a new workflow. A destroy told
to skip its backup (`no_backup`) has an id of its own (`destroy-<name>-<id>-no-backup`): the
platform's answer to a failed default destroy (a dead box cannot be backed up) must start a new
workflow, not attach to the failed one.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID

from fatctl.errors import CloudError, LeaseHeld
from fatctl.service import rollout_wf  # noqa: F401  (declares the rollout workflows)
from fatctl.service.context import AGENTS_QUEUE, current
from fatctl.service.webhooks.events import AGENT_DESTROYED, AGENT_READY, emit_in_workflow
from fatctl.services.agents.records import NewAgent
from fatctl.services.common.steps import BOX_STEPS
from fatctl.services.provision.destroy import BackupFirstFailed, destroy
from fatctl.services.provision.flow import Options, provision

PROVISION_WORKFLOW = "provision_wf"
DESTROY_WORKFLOW = "destroy_wf"
STEP_ATTEMPTS = 4


def provision_id(name: str, agent_id: int) -> str:
    return f"provision-{name}-{agent_id}"


def destroy_id(name: str, agent_id: int, *, no_backup: bool = False) -> str:
    return f"destroy-{name}-{agent_id}" + ("-no-backup" if no_backup else "")


def no_backup_hint(name: str) -> str:
    """The API's way out of a backup that cannot be taken (the CLI's says --no-backup)."""
    return (f"send DELETE /v1/agents/{name}?no_backup=true to destroy without one "
            "(the box's state is then lost)")  # fmt: skip


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, LeaseHeld | CloudError)


@DBOS.step(name="provision_run", retries_allowed=True, max_attempts=STEP_ATTEMPTS,
           interval_seconds=2.0, should_retry=_retryable)  # fmt: skip
def _provision_step(request: dict[str, Any], actor: str) -> dict[str, Any]:
    rt = current()
    opts = Options(skip=BOX_STEPS if rt.skip_box else frozenset(), backoff=rt.backoff,
                   sandbox=rt.settings.in_sandbox)  # fmt: skip
    done = provision(rt.db, rt.ring, rt.settings, rt.make_infra(), NewAgent(**request), actor,
                     opts)  # fmt: skip
    result = asdict(done)
    result["steps"] = [{k: str(v) for k, v in s.items()} for s in done.steps]
    return result


@DBOS.workflow(name=PROVISION_WORKFLOW)
def provision_workflow(request: dict[str, Any], actor: str) -> dict[str, Any]:
    result = _provision_step(request, actor)
    # The flow's end is `ready`, or in the API-only mode (no boxes) its infra end state.
    if result["state"] == "ready" or current().skip_box:
        facts = ("state", "server_id", "ipv4", "ipv6", "fqdn")
        emit_in_workflow(AGENT_READY, result["agent"], {k: result[k] for k in facts})
    return result


@DBOS.step(name="destroy_run", retries_allowed=True, max_attempts=STEP_ATTEMPTS,
           interval_seconds=2.0, should_retry=_retryable)  # fmt: skip
def _destroy_step(name: str, actor: str, release_ips: bool, no_backup: bool = False
                  ) -> dict[str, Any]:  # fmt: skip
    rt = current()
    try:
        done = destroy(rt.db, rt.ring, rt.settings, rt.make_infra(), name, actor,
                       release_ips=release_ips, backup=not no_backup)  # fmt: skip
    except BackupFirstFailed as exc:
        # Not retryable (an unreachable box stays so for 8 s); the stored error carries the
        # API's hint in its message, as DBOS keeps the message and not fatctl's hint.
        raise BackupFirstFailed(f"{exc.message}: {no_backup_hint(name)}") from None
    return {"agent": done.agent, "state": done.state}


@DBOS.workflow(name=DESTROY_WORKFLOW)
def destroy_workflow(name: str, actor: str, release_ips: bool, no_backup: bool = False
                     ) -> dict[str, Any]:  # fmt: skip
    # `no_backup` defaults to False: a workflow stored before it existed replays unchanged.
    result = _destroy_step(name, actor, release_ips, no_backup)
    emit_in_workflow(AGENT_DESTROYED, name, {"state": result["state"]})
    return result


def start_provision(request: NewAgent, agent_id: int, actor: str) -> str:
    """Enqueue (or find) the agent's provision workflow; returns its id at once."""
    assert request.name is not None
    wfid = provision_id(request.name, agent_id)
    with SetWorkflowID(wfid), SetEnqueueOptions(queue_partition_key=request.name):
        DBOS.enqueue_workflow(AGENTS_QUEUE, provision_workflow, asdict(request), actor)
    return wfid


def start_destroy(name: str, agent_id: int, actor: str, *, release_ips: bool = True,
                  no_backup: bool = False) -> str:  # fmt: skip
    wfid = destroy_id(name, agent_id, no_backup=no_backup)
    with SetWorkflowID(wfid), SetEnqueueOptions(queue_partition_key=name):
        DBOS.enqueue_workflow(AGENTS_QUEUE, destroy_workflow, name, actor, release_ips,
                              no_backup)  # fmt: skip
    return wfid


def workflow_state(wfid: str) -> dict[str, Any] | None:
    """The workflow's status, and its error's one line when it failed; None if unknown."""
    status = DBOS.get_workflow_status(wfid)
    if status is None:
        return None
    error = status.error
    message = "" if error is None else str(getattr(error, "message", error))
    return {"workflow_id": wfid, "status": status.status, "error": message}
