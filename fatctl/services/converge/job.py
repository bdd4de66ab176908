"""`converge`: re-rendered configuration rolled out to live boxes, with the upgrade's machinery.

User-data only runs when a box is created, so a template, unit or Caddyfile change never reaches
a live box by itself. Converge renders each agent's box files from its current spec (the same
`cloud_init.render.render_files` as provisioning), compares them with the box over SSH and, as a
rollout of kind `converge` (canaries, batches, gates, resume, abort), writes what differs.
`preview` is the dry run: per-box changes and redacted diffs, nothing written, nothing recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud_init.environment import TEMPLATE_PACKAGE, TemplateSource
from cloud_init.files import RenderedFile
from cloud_init.render import render_files
from cloud_init.specjson import redact_host_keys
from fatctl.domain import RolloutPolicy
from fatctl.errors import FatctlError
from fatctl.remote.commands.upgrade import health
from fatctl.services.common.specs import sandbox_spec, spec_for_agent
from fatctl.services.converge import diff
from fatctl.services.converge.host import HostConverge
from fatctl.services.rollout import engine as rollout
from fatctl.services.rollout.gate import Gate, StepFailed, Unreachable
from fatctl.services.rollout.kinds import JobKind, register

if TYPE_CHECKING:
    from fatctl.remote.runner import Pool
    from fatctl.remote.target import Target
    from fatctl.services.rollout.engine import Job, Report, Run
    from fatctl.state.models import RolloutStep


@dataclass(frozen=True)
class BoxPreview:
    """What converge would do on one box."""

    agent: str
    changes: tuple[diff.Change, ...]
    error: str = ""

    def row(self) -> dict[str, Any]:
        kinds = {"added": [], "changed": [], "mode": []}  # type: dict[str, list[str]]
        for c in self.changes:
            kinds[c.kind].append(c.path)
        return {"agent": self.agent, **kinds, "error": self.error}


def source_of(templates: str | None) -> TemplateSource:
    return Path(templates) if templates else TEMPLATE_PACKAGE


def render_for(
    run: Run, name: str, templates: TemplateSource, sandbox: bool = False
) -> dict[str, RenderedFile]:
    """The agent's box files from its spec now (no secrets: see `converge.diff`).

    Host private keys only go into user-data, never into these files: the spec is rendered
    with them redacted, so converge never decrypts them. `sandbox` renders as provisioning
    does for the sandbox's boxes (golden image, Caddy's internal CA)."""
    spec = redact_host_keys(spec_for_agent(name, engine=run.engine, settings=run.settings))
    return diff.desired_files(render_files(sandbox_spec(spec, sandbox), templates))


def _fleet_digest(per_host: dict[str, str]) -> str:
    text = "\n".join(f"{k} {v}" for k, v in sorted(per_host.items()))
    return "config:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def start(
    run: Run,
    targets: Sequence[Target],
    policy: RolloutPolicy,
    templates: str | None = None,
    sandbox: bool = False,
) -> Report:
    """Render every selected box first (bad templates fail here, before any box is touched)."""
    source = source_of(templates)
    per_host = {t.name: diff.digest(render_for(run, t.name, source, sandbox)) for t in targets}
    extra = {"templates": templates or "", "sandbox": sandbox}
    return rollout.begin(run, targets, "converge", _fleet_digest(per_host), policy, per_host, extra)


def _gate(run: Run, pool: Pool, policy: RolloutPolicy) -> Gate:
    domain = run.settings.domain if run.https else ""
    return Gate(pool, health(run.layout), policy.health_timeout_s, domain, run.poll)


def host_worker(run: Run, pool: Pool, job: Job, step: RolloutStep, name: str) -> HostConverge:
    """Re-render for a (possibly resumed) step; refuse when the configuration moved since.
    Undoing needs no rendering: it restores the box's own backup."""
    gate = _gate(run, pool, job.policy)
    source = source_of(job.extra.get("templates") or None)
    files = render_for(run, name, source, bool(job.extra.get("sandbox")))
    keep = max(1, job.policy.keep_versions)
    work = HostConverge(pool, run.files, gate, job.rollout_id, files, keep)
    if step.to_version and diff.digest(files) != step.to_version:
        # Never write another configuration than the one recorded; a half-done box goes back.
        work.refuse = (
            f"configuration of {name} changed since rollout {job.rollout_id} started; "
            "start a new converge"
        )
    return work


def undo_worker(run: Run, pool: Pool, job: Job, step: RolloutStep, name: str) -> HostConverge:
    return HostConverge(pool, run.files, _gate(run, pool, job.policy), job.rollout_id)


CONVERGE = register(JobKind("converge", host_worker, undo_worker))


def preview(
    run: Run, targets: Sequence[Target], templates: str | None = None, sandbox: bool = False
) -> list[BoxPreview]:
    """The dry run: read every box in parallel and diff it against its rendering."""
    from fatctl.remote.runner import Pool

    source = source_of(templates)
    wanted = {t.name: render_for(run, t.name, source, sandbox) for t in targets}
    with Pool() as pool, ThreadPoolExecutor(max_workers=min(10, len(targets) or 1)) as workers:
        futures = [workers.submit(_preview_one, run, pool, t, wanted[t.name]) for t in targets]
        return [f.result() for f in futures]


def _preview_one(
    run: Run, pool: Pool, target: Target, files: dict[str, RenderedFile]
) -> BoxPreview:
    worker = HostConverge(pool, run.files, Gate(pool, "true", 1.0), 0, files)
    try:
        have = worker.read(target)
    except (StepFailed, Unreachable) as exc:
        return BoxPreview(target.name, (), str(exc))
    except FatctlError as exc:
        return BoxPreview(target.name, (), exc.one_line())
    return BoxPreview(target.name, tuple(diff.changes(files, have, run.files.owners)))
