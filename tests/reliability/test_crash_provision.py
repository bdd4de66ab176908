"""Kill `fatctl provision` (SIGKILL) at every step boundary and inside every cloud write, rerun
it, and check that it converges: one server, one v4+v6 pair, one firewall, one A and one AAAA,
secrets as before the kill, no lease left, nothing leaked. Figures: steps killed, runs
converged, duplicates found, leaked resources (all in the terminal summary)."""

from __future__ import annotations

from collections.abc import Callable

from tests.reliability.checks import Tally, provisioned, secrets_of, strays, unfinished_step
from tests.reliability.harness import KillAt, Lab


def provision_args(name: str) -> tuple[str, ...]:
    return ("provision", name, "--owner", "crash@example.com", "--no-box")


def reference(lab: Lab) -> tuple[list[str], dict[str, int]]:
    """A clean run's event stream and how many writes it sent to each cloud."""
    lab.reset_stats()
    ref = lab.fatctl(*provision_args("crash-ref"))
    assert ref.rc == 0, ref.stderr
    writes = {c: lab.mutating_calls(c) for c in ("hetzner", "cloudflare")}
    assert writes["hetzner"] >= 9 and writes["cloudflare"] == 2, writes
    return ref.steps(), writes


def crash_and_rerun(lab: Lab, tally: Tally, name: str, kill: KillAt) -> None:
    run = lab.fatctl(*provision_args(name), kill=kill)
    assert run.killed or kill.event is not None, (kill.label(), run.steps(), run.stderr)
    # Recorded before its side effect: a kill inside a write leaves its step started, open.
    open_step = unfinished_step(lab, name, "provision")
    assert open_step or not kill.cloud, (kill.label(), run.steps())
    before = secrets_of(lab, name)
    again = lab.fatctl(*provision_args(name))
    verdict = provisioned(lab, name, before)
    verdict.expect(again.rc == 0, f"rerun exit {again.rc}: {again.stderr.strip()[-300:]}")
    tally.add(name, f"{kill.label()} in {open_step or '-'}", run.killed, verdict)


def finish(lab: Lab, tally: Tally, figure: Callable[..., None], what: str) -> None:
    tally.absorb(strays(lab, tally.agents))
    tally.report(figure, what)
    assert not tally.failures, "\n".join(tally.failures)


def test_provision_killed_at_every_step_boundary(lab: Lab, figure: Callable[..., None]) -> None:
    """Killed when event k of the --json stream arrives, for every k up to one past the last
    side effect (DNS); the kill lands at that boundary or a few ms into the next step."""
    steps, _ = reference(lab)
    tally = Tally({"crash-ref"})
    for k in range(steps.index("step.done:dns") + 2):
        crash_and_rerun(lab, tally, f"step-{k:02d}", KillAt(event=k))
    finish(lab, tally, figure, "provision, step boundaries")
    assert tally.killed >= tally.runs - 1  # the last kill may race the process's own exit


def test_provision_killed_inside_every_cloud_write(lab: Lab, figure: Callable[..., None]) -> None:
    """Killed while write n to Hetzner or Cloudflare is held: applied, answer not yet sent."""
    tally = Tally({"crash-ref"})
    # First, on an empty project: the kill lands inside the fleet SSH key's create.
    crash_and_rerun(lab, tally, "write-key", KillAt(cloud="hetzner", nth=1))
    _, writes = reference(lab)
    for cloud, n in writes.items():
        for k in range(1, n + 1):
            crash_and_rerun(lab, tally, f"write-{cloud[:2]}-{k:02d}", KillAt(cloud=cloud, nth=k))
    finish(lab, tally, figure, "provision, inside writes")
    assert tally.killed == tally.runs


def test_provision_killed_twice_while_the_server_is_still_being_created(
    lab: Lab, figure: Callable[..., None]
) -> None:
    """The operator kills a run inside the server's create, reruns at once while Hetzner still
    runs the create action (the server `locked`), kills that rerun inside its first write too,
    and runs again: still one of everything."""
    lab.hetzner.set_faults(action_delays={"create_server": 4.0})
    tally = Tally(set())
    name = "slow-create"
    first = lab.fatctl(*provision_args(name), kill=KillAt(cloud="hetzner", nth=1,
                                                         match="^POST /v1/servers$"))  # fmt: skip
    assert first.killed and unfinished_step(lab, name, "provision") == "infra"
    before = secrets_of(lab, name)
    second = lab.fatctl(*provision_args(name), kill=KillAt(cloud="hetzner", nth=1))
    again = lab.fatctl(*provision_args(name))
    lab.hetzner.clear_faults()
    verdict = provisioned(lab, name, before)
    verdict.expect(again.rc == 0, f"rerun exit {again.rc}: {again.stderr.strip()[-300:]}")
    tally.add(name, f"server create, then {second.steps()[-1:]}", first.killed, verdict)
    tally.killed += second.killed
    finish(lab, tally, figure, "provision, killed twice during a slow create")
