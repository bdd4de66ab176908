"""The fleet's infra as a whole: preview, apply in waves, status.

- `preview.preview(...)` / `select_specs`: what applying infra would change, per agent.
- `apply.apply_fleet(...)` (`ApplyRun`): infra changes in batches; `apply_gate` after resizes.
- `status.status(...)`: database, cloud and box health side by side.
"""
