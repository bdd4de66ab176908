"""The provision flow's `material` step gives every agent a backup key (issue 18): the age
identity sealed under BACKUP_IDENTITY_SECRET, its recipient public in the agent row and spec."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from fatctl.backup_keys import is_recipient, recipient_of
from fatctl.services.agents.records import NewAgent, create_agent
from fatctl.services.common.secret_names import BACKUP_IDENTITY_SECRET
from fatctl.services.provision.cloud import material
from fatctl.state import repo, secret_store
from fatctl.state.db import session_scope

REQ = NewAgent("alpha", "ann@example.com", "managed", "cx23", "fsn1", "debian-12", "2026.9.6")


def _flow(engine: Any, ring: Any) -> Any:
    return SimpleNamespace(db=engine, ring=ring, name="alpha")


def _key(engine: Any, ring: Any) -> tuple[str, str]:
    with session_scope(engine) as s:
        agent = repo.get_agent(s, "alpha")
        identity = secret_store.get(s, ring, agent_pk=agent.id, name=BACKUP_IDENTITY_SECRET)
        return agent.backup_recipient, recipient_of(identity)


def test_material_makes_the_backup_key_once(migrated_engine, keyring) -> None:
    create_agent(migrated_engine, keyring, REQ, "t")
    made = material(_flow(migrated_engine, keyring))
    assert "backup-identity" in str(made["generated"])
    recipient, derived = _key(migrated_engine, keyring)
    assert is_recipient(recipient) and recipient == derived
    again = material(_flow(migrated_engine, keyring))
    assert again["generated"] == "none (reused)"
    assert _key(migrated_engine, keyring)[0] == recipient


def test_a_lost_recipient_is_derived_from_the_kept_identity(migrated_engine, keyring) -> None:
    """Backups already taken stay openable: the identity is never replaced while it exists."""
    create_agent(migrated_engine, keyring, REQ, "t")
    material(_flow(migrated_engine, keyring))
    recipient, _ = _key(migrated_engine, keyring)
    with session_scope(migrated_engine) as s:
        repo.get_agent(s, "alpha").backup_recipient = ""
    material(_flow(migrated_engine, keyring))
    assert _key(migrated_engine, keyring) == (recipient, recipient)
