"""State backups of an agent's box (issue 18): OpenClaw's own archive, encrypted on the box to
the agent's age recipient and kept in the agent's R2 prefix under `backups/`.

- `retention`: which backup objects a prune deletes (pure; the box's `fat-backup prune`
  mirrors it in jq, and a parity test holds the two together).
"""
