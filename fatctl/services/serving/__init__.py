"""What the agent serves its customer, changed on a live box: the model and whose key pays for
it, channels, allowed senders.

Entry points: `changes` (the database side of each change: `set_model`, `store_model_key`,
`add_channel`, `remove_channel`, `add_sender`, `remove_sender`) and `push.push` (record a change
and bring the running box to it: config re-rendered, `gateway.env` re-delivered, the gateway
restarted once, readiness gated, audited; `dry_run` shows the diff and writes nothing).
"""
