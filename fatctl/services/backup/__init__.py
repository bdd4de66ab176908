"""State backups of an agent's box (issue 18): OpenClaw's own archive, encrypted on the box to
the agent's age recipient and kept in the agent's R2 prefix under `backups/`.

- `on_box`: `take_backup`, `list_backups`, `verify_backup`, `restore_backup`: the box's
  `fat-backup` over SSH, its answers recorded in `backups` and the audit trail.
- `retention`: which backup objects a prune deletes (pure; the box's `fat-backup prune`
  mirrors it in jq, and a parity test holds the two together).
"""
