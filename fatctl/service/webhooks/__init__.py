"""Signed webhooks to the platform: events about agents and rollouts, delivered durably.

Entry points: `events.emit` (record an event and start its delivery; `events.emit_in_workflow`
from inside a DBOS workflow), `signing.sign`/`signing.verify` (the `Fatctl-Signature` header,
pure), `delivery.attempt` (one signed POST and its bookkeeping), `delivery.deliver_workflow`
(the retries with backoff, then the dead letter), `target` (the URL setting and the sealed
signing secret), `listing` (`fatctl webhooks list|redeliver`).
"""
