"""Audit events written in their own transaction, for flows that record per-host outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from fatctl.state.db import session_scope

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def audit_change(
    engine: Engine, actor: str, action: str, target: str, result: str, detail: Mapping[str, object]
) -> None:
    """One audit event in its own transaction (per-host outcomes must survive a later failure)."""
    from fatctl.state import repo

    with session_scope(engine) as session:
        repo.audit(
            session, actor=actor, action=action, target=target, result=result, detail=dict(detail)
        )
