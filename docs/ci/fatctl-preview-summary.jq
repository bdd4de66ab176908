# Markdown summary of `fatctl preview --all --json` (shape: docs/exit-codes.md): the agents
# with changes or errors, live-box replacements flagged, then the totals.
"| agent | creates | updates | replaces | deletes | note |",
"|---|---:|---:|---:|---:|---|",
(.agents[]
 | select(.creates + .updates + .replaces + .deletes > 0 or .error != "")
 | "| \(.agent) | \(.creates) | \(.updates) | \(.replaces) | \(.deletes) | "
   + (if .error != "" then "error: \(.error)"
      elif .replaces_live_box then "**replaces the live box** (apply refuses without --allow-replace)"
      else "" end)
   + " |"),
"",
"\(.totals.with_changes) of \(.totals.agents) agents with changes, \(.totals.replacing_live_boxes) live-box replacements, \(.totals.errors) errors (engine: \(.engine))"
