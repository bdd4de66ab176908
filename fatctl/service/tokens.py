"""API tokens: made once and shown once, kept as SHA-256, checked on every request.

A token is `fat_` + 32 random bytes (URL-safe base64): 256 bits of entropy, so SHA-256 is as
strong as a slow password hash and costs microseconds per request. The lookup is by the hash
(indexed), so no token is ever compared as text; a token past `expires_at` or revoked is as
unknown as a wrong one, and the API answers all three alike (401).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fatctl.clock import wall_clock
from fatctl.errors import BadInput, NotFound
from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

SCOPES = ("agents:read", "agents:write", "metrics:read", "fleet:admin")
ADMIN_SCOPE = "fleet:admin"  # implies every other scope
TOKEN_PREFIX = "fat_"  # noqa: S105 (a prefix, not a secret)
MAX_EXPIRY_DAYS = 3650
TOKEN_NAME = re.compile(r"(?=.{2,64}$)[a-z0-9]+(?:[._-][a-z0-9]+)*")  # no doubled or trailing marks


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN_SCOPE in self.scopes

    def row(self) -> dict[str, object]:
        when = {k: (v.isoformat() if v else "") for k, v in (
            ("created_at", self.created_at), ("expires_at", self.expires_at),
            ("revoked_at", self.revoked_at), ("last_used_at", self.last_used_at))}  # fmt: skip
        return {"name": self.name, "scopes": " ".join(self.scopes), **when}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_name(name: str) -> str:
    if not TOKEN_NAME.fullmatch(name):
        shown = name if name.isprintable() and len(name) <= 64 else "(unprintable or too long)"
        rule = "2-64 of a-z 0-9 . _ -, a-z/0-9 at both ends, no doubled . _ -"
        raise BadInput(f"token name {shown!r} must be {rule}")
    return name


def valid_scopes(scopes: list[str]) -> tuple[str, ...]:
    if not scopes:
        raise BadInput(f"a token needs at least one --scope: {', '.join(SCOPES)}")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise BadInput(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    return tuple(sorted(set(scopes)))


def parse_expiry(text: str | None) -> timedelta | None:
    """`90d`, `12h` or `30m`; None for a token that does not expire."""
    if text is None:
        return None
    units = {"d": 86400, "h": 3600, "m": 60}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise BadInput(f"--expires-in must be like 90d, 12h or 30m, not {text!r}")
    seconds = int(number) * units[unit]
    if seconds > MAX_EXPIRY_DAYS * 86400:
        raise BadInput(f"--expires-in is at most {MAX_EXPIRY_DAYS}d")
    return timedelta(seconds=seconds)


def create_token(
    db: Engine, name: str, scopes: list[str], expires_in: str | None, actor: str
) -> tuple[str, TokenInfo]:
    """A new token (returned once, never stored) and its record; refused before any write."""
    from sqlalchemy.exc import IntegrityError

    from fatctl.state import repo
    from fatctl.state.models import ApiToken

    name = token_name(name)
    granted, ttl = valid_scopes(scopes), parse_expiry(expires_in)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = wall_clock()
    expires = now + ttl if ttl else None
    row = ApiToken(name=name, token_sha256=token_hash(token), scopes=" ".join(granted),
                   created_by=actor, created_at=now, expires_at=expires)  # fmt: skip
    try:
        with session_scope(db) as session:
            session.add(row)
            repo.audit(session, actor=actor, action="tokens.create", target=f"token:{name}",
                       detail={"scopes": list(granted)})  # fmt: skip
    except IntegrityError:
        raise BadInput(f"a token named {name} exists: revoke it or pick another name") from None
    return token, _info(row)


def list_tokens(db: Engine) -> list[TokenInfo]:
    from sqlmodel import col, select

    from fatctl.state.models import ApiToken

    with session_scope(db) as session:
        rows = session.exec(select(ApiToken).order_by(col(ApiToken.name))).all()
        return [_info(r) for r in rows]


def revoke_token(db: Engine, name: str, actor: str) -> TokenInfo:
    from sqlmodel import select

    from fatctl.state import repo
    from fatctl.state.models import ApiToken

    with session_scope(db) as session:
        row = session.exec(select(ApiToken).where(ApiToken.name == name)).first()
        if row is None:
            raise NotFound(f"no token named {name}")
        if row.revoked_at is None:
            row.revoked_at = wall_clock()
            session.add(row)
            repo.audit(session, actor=actor, action="tokens.revoke", target=f"token:{name}")
        return _info(row)


def authenticate(db: Engine, token: str) -> TokenInfo | None:
    """The live token `token` is, noting its use; None for unknown, expired or revoked."""
    from sqlmodel import select

    from fatctl.state.models import ApiToken

    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    now = wall_clock()
    with session_scope(db) as session:
        row = session.exec(
            select(ApiToken).where(ApiToken.token_sha256 == token_hash(token))
        ).first()
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and _aware(row.expires_at) <= now:
            return None
        row.last_used_at = now
        session.add(row)
        return _info(row)


def _aware(ts: datetime) -> datetime:
    """SQLite hands timezone-aware columns back naive (they were stored as UTC)."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _info(row: object) -> TokenInfo:
    from fatctl.state.models import ApiToken

    assert isinstance(row, ApiToken) and row.id is not None
    return TokenInfo(row.id, row.name, tuple(row.scopes.split()), row.created_at, row.expires_at,
                     row.revoked_at, row.last_used_at)  # fmt: skip
