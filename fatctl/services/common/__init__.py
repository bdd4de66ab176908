"""What every flow shares; imports no feature package.

- `steps.StepLog`: recorded, resumable steps (their waits take `fatctl.pacing.poll.Backoff`).
- `specs.spec_for_agent` / `build_spec`: an agent's `AgentSpec` from the database and settings.
- `targets.select_targets` / `select_agents` / `agent_target` / `target_for`: which boxes a
  command reaches, with their pinned host keys.
- `delivery.deliver_file`: a secret file onto a box (stdin only, atomic, 0600).
- `audit.audit_change`: one audit event in its own transaction; `audit.audit_runs`: what the
  trail keeps of commands operators ran on boxes (`RemoteRun`).
- `https_probe.https_status`, `wait_for_https`: the verified HTTPS request of the health
  gates, once, or retried to a deadline with a one-line failure.
"""
