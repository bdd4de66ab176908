"""Automatic repair, with limits (issue 20): a box that stays unhealthy walks a ladder of
rungs (restart the gateway, reboot the server, rebuild from the latest backup), each followed by
the health gate, until it is healthy again or the ladder pages an operator instead.

`ladder` is the pure policy, `records` reads its inputs and keeps `repair_attempts` and
`repair_holds`, `rungs` runs one rung on a box; `fatctl serve` enqueues the repairs after
each health sweep (`fatctl.service.repair_wf`), `fatctl repair` lists and holds.
"""
