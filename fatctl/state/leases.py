"""Named, expiring leases in the state database, so two runs on one agent cannot race.

Taking a lease is one INSERT (the primary key makes a second taker fail) or, for an expired
lease or one whose holder process is dead on this host, one conditional UPDATE that only the
first of several contenders can win. This is correct on PostgreSQL and on SQLite alike because
both serialise writes to the row. Each lease commits in its own short transaction.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fatctl.errors import LeaseHeld

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def new_holder() -> str:
    """`host:pid:nonce` — enough to tell whether the holder is still alive."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder: str) -> bool:
    """True only when the holder ran on this host and its process is gone."""
    try:
        host, pid_text, _ = holder.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _as_aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def try_acquire(engine: Engine, name: str, holder: str, ttl_s: float) -> str | None:
    """Take the lease; return None on success, else the current holder."""
    from sqlalchemy import insert, select, update
    from sqlalchemy.exc import IntegrityError

    from fatctl.state.models import Lease

    table = Lease.__table__  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_s)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(table).values(name=name, holder=holder, acquired_at=now, expires_at=expires)
            )
        return None
    except IntegrityError:
        pass
    with engine.begin() as conn:
        row = conn.execute(select(table).where(table.c.name == name)).first()
        if row is None:  # released between our insert and select: try once more later
            return "(released)"
        stale = _as_aware(row.expires_at) < now or holder_is_dead(row.holder)
        if not stale and row.holder != holder:
            return str(row.holder)
        taken = conn.execute(
            update(table)
            .where(table.c.name == name, table.c.holder == row.holder)
            .values(holder=holder, acquired_at=now, expires_at=expires)
        )
        if taken.rowcount == 1:
            return None
        return str(row.holder)


def release(engine: Engine, name: str, holder: str) -> None:
    from sqlalchemy import delete

    from fatctl.state.models import Lease

    table = Lease.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.name == name, table.c.holder == holder))


@contextmanager
def lease(
    engine: Engine,
    name: str,
    *,
    ttl_s: float = 900.0,
    wait_s: float = 0.0,
    poll_s: float = 0.5,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[str]:
    """Hold `name` for the duration of the block; wait up to `wait_s` for another holder."""
    holder = new_holder()
    deadline = time.monotonic() + wait_s
    told = False
    while (other := try_acquire(engine, name, holder, ttl_s)) is not None:
        if time.monotonic() >= deadline:
            raise LeaseHeld(
                f"{name} is busy: held by {other}", hint="retry later or pass --wait SECONDS"
            )
        if on_wait and not told:
            on_wait(other)
            told = True
        time.sleep(poll_s)
    try:
        yield holder
    finally:
        release(engine, name, holder)
