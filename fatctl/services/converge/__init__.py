"""Re-rendered configuration rolled out to live boxes, as the rollout engine's `converge` kind.

- `job.start` / `preview`: the rollout of the re-rendered files (and `--dry-run`).
- `diff`: what would change on one box, pure; `host.HostConverge`: one box's converge.
"""
