"""`fatctl webhooks list|redeliver|secret`: the events `fatctl serve` posts to the platform.

The signing secret is never an argument, an environment variable or output: `secret set` reads
it from stdin, `secret rotate --out FILE` writes a fresh one into a new 0600 file (the one time
it exists outside the sealed store) for the operator to hand to the platform.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from fatctl.cli.context import ctx
from fatctl.cli.options import JsonOpt
from fatctl.cli.output import Output

app = typer.Typer(help="Signed webhooks to the platform: deliveries, dead letters, the secret.",
                  no_args_is_help=True)  # fmt: skip
secret_app = typer.Typer(help="The webhook signing secret (sealed; never shown).",
                         no_args_is_help=True)  # fmt: skip
app.add_typer(secret_app, name="secret")

MAX_SECRET_BYTES = 512


@app.command("list")
def list_(
    dead: Annotated[bool, typer.Option("--dead", help="Only the dead letters.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Recorded events and how their delivery went, newest first."""
    from fatctl.service.webhooks.listing import COLUMNS, deliveries

    rows = deliveries(ctx().engine, dead_only=dead)
    Output(json_out).table(rows, COLUMNS, title="dead webhook events" if dead else "webhook events")


@app.command("redeliver")
def redeliver(
    event_id: Annotated[str, typer.Argument(help="The event's id (evt_...), from `list`.")],
    json_out: JsonOpt = False,
) -> None:
    """Send one event again now (same body, fresh signature); exit 1 if it is not accepted."""
    import re

    from fatctl.errors import BadInput, CloudError
    from fatctl.service.webhooks.listing import redeliver as send_again
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    if not re.fullmatch(r"evt_[0-9a-f]{32}", event_id):
        raise BadInput(f"event id {event_id[:40]!r} must look like evt_ and 32 hex digits")
    c = ctx()
    outcome = send_again(c.engine, c.keyring, c.settings, event_id)
    with session_scope(c.engine) as session:
        repo.audit(session, actor=c.actor, action="webhooks.redeliver", target=event_id,
                   result="ok" if outcome["result"] == "delivered" else "failed",
                   detail={"status": outcome["status"], "error": outcome["error"]})  # fmt: skip
    if outcome["result"] != "delivered":
        raise CloudError(f"webhook event {event_id} not accepted: {outcome['error']}")
    Output(json_out).record(outcome, title="webhook event delivered")


def _store(secret: object, action: str) -> str:
    """Seal the new secret; the replaced one keeps signing for the configured overlap."""
    from fatctl.clock import wall_clock
    from fatctl.sensitive import Sensitive
    from fatctl.service.webhooks.target import secret_overlap, store_secret
    from fatctl.state import repo
    from fatctl.state.db import session_scope

    assert isinstance(secret, Sensitive)
    c = ctx()
    overlap = secret_overlap(c.settings)
    now = wall_clock()
    with session_scope(c.engine) as session:
        fingerprint = store_secret(session, c.keyring, secret, now=now, overlap=overlap)
        repo.audit(session, actor=c.actor, action=action, target="global",
                   detail={"fingerprint": fingerprint,
                           "previous_signs_until": (now + overlap).isoformat() if overlap
                           else ""})  # fmt: skip
    return fingerprint


@secret_app.command("set")
def secret_set(json_out: JsonOpt = False) -> None:
    """Store the signing secret the platform chose, read from stdin (32 characters at least)."""
    from fatctl.cli.bounded_input import read_stdin
    from fatctl.errors import BadInput
    from fatctl.sensitive import Sensitive
    from fatctl.service.webhooks.target import MIN_SECRET_CHARS

    if sys.stdin.isatty():
        raise BadInput("pipe the signing secret on stdin; it is never taken from arguments")
    secret = Sensitive(read_stdin("webhook signing secret", MAX_SECRET_BYTES).strip())
    if len(secret.reveal()) < MIN_SECRET_CHARS:
        raise BadInput(f"the signing secret needs at least {MIN_SECRET_CHARS} characters")
    fingerprint = _store(secret, "webhooks.secret.set")
    Output(json_out).record({"stored": True, "fingerprint": fingerprint},
                            title="webhook signing secret stored")  # fmt: skip


@secret_app.command("rotate")
def secret_rotate(
    out: Annotated[
        Path, typer.Option("--out", help="A new file (0600) to write the secret into, once.")
    ],
    json_out: JsonOpt = False,
) -> None:
    """Make a new signing secret, seal it, and write it into a new 0600 file for the platform.

    From the next attempt on, deliveries are signed with it and, for
    FATCTL_WEBHOOK_SECRET_OVERLAP_H (24 h), also with the replaced one (a second v1=): give the
    platform the file's content within that time, then delete the file."""
    import os

    from fatctl.errors import BadInput
    from fatctl.service.webhooks.target import new_secret

    secret = new_secret()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BadInput(f"{out} exists: name a new file for the secret") from None
    except OSError as exc:
        raise BadInput(f"cannot create {out}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secret.reveal() + "\n").encode())
    finally:
        os.close(fd)
    try:
        fingerprint = _store(secret, "webhooks.secret.rotate")
    except BaseException:
        out.unlink(missing_ok=True)  # nothing half-written: no file without a stored secret
        raise
    Output(json_out).record({"written_to": str(out), "fingerprint": fingerprint},
                            title="webhook signing secret rotated")  # fmt: skip
