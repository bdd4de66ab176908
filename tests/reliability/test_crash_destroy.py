"""Kill `fatctl destroy` (SIGKILL) at every step boundary and inside every cloud write, rerun
it, and check that nothing is left but what destroy keeps by design (the two primary IPs,
unassigned; with --release-ips not even those), the agent `destroyed` and no lease held.

Agents are provisioned in-process through the service (API only, like --no-box) to save a CLI
start per scenario; only the destroy runs are the real CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from tests.reliability.checks import Tally, destroyed, strays, unfinished_step
from tests.reliability.harness import KillAt, Lab


def provision_in_process(lab: Lab, name: str) -> None:
    from fatctl.infra.hcloud.engine import HcloudEngine
    from fatctl.pacing.poll import Backoff
    from fatctl.pacing.timing import Timing
    from fatctl.services.agents.records import NewAgent
    from fatctl.services.common.steps import BOX_STEPS
    from fatctl.services.provision.flow import Options, provision

    # Actions take 0.05 s in the lab: poll them at that pace, as the lab's CLI runs do. With an
    # instant poll the SDK asks for each action back to back, and on an idle machine the
    # scenarios together ran out of the emulator's 3600 requests/hour (429 in a provision).
    timing = replace(Timing.instant(), poll_interval=0.05)
    infra = HcloudEngine(lab.settings, timing=timing, sleep=lambda s: None)
    request = NewAgent(name, "crash@example.com", "managed", "cx23", "fsn1", "debian-12",
                       "2026.9.6")  # fmt: skip
    opts = Options(skip=BOX_STEPS, backoff=Backoff.instant(), validate=False)
    provision(lab.db, lab.ring, lab.settings, infra, request, "test", opts)


def destroy_args(name: str, release: bool) -> tuple[str, ...]:
    return ("destroy", name, "--yes", *(("--release-ips",) if release else ()))


def reference(lab: Lab, release: bool) -> tuple[int, dict[str, int]]:
    """A clean destroy's number of events and its writes to each cloud."""
    name = f"ref-{'rel' if release else 'keep'}"
    provision_in_process(lab, name)
    lab.reset_stats()
    ref = lab.fatctl(*destroy_args(name, release))
    assert ref.rc == 0, ref.stderr
    assert not destroyed(lab, name, release).problems
    return len(ref.events), {c: lab.mutating_calls(c) for c in ("hetzner", "cloudflare")}


def crash_and_rerun(lab: Lab, tally: Tally, name: str, kill: KillAt, release: bool) -> None:
    provision_in_process(lab, name)
    run = lab.fatctl(*destroy_args(name, release), kill=kill)
    assert run.killed or kill.event is not None, (kill.label(), run.steps(), run.stderr)
    # Recorded before its side effect: a kill inside a write leaves its step started, open.
    open_step = unfinished_step(lab, name, "destroy")
    assert open_step or not kill.cloud, (kill.label(), run.steps())
    again = lab.fatctl(*destroy_args(name, release))
    verdict = destroyed(lab, name, release)
    verdict.expect(again.rc == 0, f"rerun exit {again.rc}: {again.stderr.strip()[-300:]}")
    tally.add(name, f"{kill.label()} in {open_step or '-'}", run.killed, verdict)


def test_destroy_killed_anywhere_leaves_only_what_it_keeps(
    lab: Lab, figure: Callable[..., None]
) -> None:
    tally = Tally({"ref-keep", "ref-rel"})
    for release in (False, True):
        events, writes = reference(lab, release)
        kills = [KillAt(cloud=c, nth=k) for c, n in writes.items() for k in range(1, n + 1)]
        if not release:  # the boundaries are the same with or without --release-ips
            kills = [KillAt(event=k) for k in range(events - 1)] + kills
        for i, kill in enumerate(kills):
            name = f"{'rel' if release else 'keep'}-{i:02d}"
            crash_and_rerun(lab, tally, name, kill, release)
    tally.absorb(strays(lab, tally.agents))
    tally.report(figure, "destroy")
    assert not tally.failures, "\n".join(tally.failures)
    assert tally.killed >= tally.runs - 1  # the last boundary kill may race the exit


def test_destroy_after_a_provision_killed_inside_the_server_create(
    lab: Lab, figure: Callable[..., None]
) -> None:
    """The server exists at Hetzner but no run recorded its id: destroy finds it by its labels
    (and the DNS by its tags) instead of trusting the row, and leaves only the kept IPs."""
    tally = Tally(set())
    name = "half-made"
    run = lab.fatctl("provision", name, "--owner", "crash@example.com", "--no-box",
                     kill=KillAt(cloud="hetzner", nth=1, match="^POST /v1/servers$"))  # fmt: skip
    assert run.killed and unfinished_step(lab, name, "provision") == "infra"
    assert len(lab.hetzner.inventory()["servers"]) == 1  # made, but its id never recorded
    gone = lab.fatctl(*destroy_args(name, False))
    verdict = destroyed(lab, name)
    verdict.expect(gone.rc == 0, f"destroy exit {gone.rc}: {gone.stderr.strip()[-300:]}")
    tally.add(name, "provision's server create, then destroy", run.killed, verdict)
    tally.absorb(strays(lab, tally.agents))
    tally.report(figure, "destroy after a killed provision")
    assert not tally.failures, "\n".join(tally.failures)
