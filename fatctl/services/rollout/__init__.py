"""The rollout engine: waves of per-host work, recorded step by step, resumable and abortable.

- `engine.start` / `resume` / `abort` (`Run`, `Job`, `Report`): the waves, leases and records.
- `kinds`: the registry of job kinds; a kind registers the per-host work it runs.
- `upgrade.HostUpgrade`: the `upgrade` kind (install beside, test boot, switch, restart).
- `gate.Gate`: the health gate every step passes; `plan`: waves and halting, pure.
- `records`: the rollout's rows.
"""
