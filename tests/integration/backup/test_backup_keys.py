"""Backup keys for agents provisioned before backup keys existed (issue 18).

Such an agent has no sealed `backup-identity` and an empty `agents.backup_recipient`, so its box
never got `fat-backup` (rendered only with a recipient). Before: `fatctl backup now` reached the
box and failed on a missing command, and an upgrade rollout with backup first skipped the backup
without a word. Now every backup path refuses in one line naming `fatctl backup keys AGENT`,
which makes the key (sealed; recipient public) as a serving change, so the box gets what
provisioning renders for it. On the state database only: the delivery itself is
`services.serving.push`, the same as every serving change.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fatctl.backup_keys import is_recipient, recipient_of
from fatctl.config import Settings
from fatctl.errors import FatctlError
from fatctl.services.agents.records import NewAgent, create_agent
from fatctl.services.backup.keys import backup_key_change
from fatctl.services.backup.on_box import backup_identity, take_backup
from fatctl.services.common.secret_names import BACKUP_IDENTITY_SECRET
from fatctl.services.rollout.kinds import _backs_up
from fatctl.services.serving.push import push
from fatctl.state import repo, secret_store
from fatctl.state.db import session_scope

OLD = NewAgent("oldie", "ann@example.com", "managed", "cx23", "fsn1", "debian-12", "2026.9.6")


class NoBox:
    """A pool that fails the test if anything reaches for a box."""

    def get(self, target: Any) -> Any:
        raise AssertionError(f"{target.name}'s box was reached")


def key_of(engine: Any, ring: Any) -> tuple[str, str]:
    with session_scope(engine) as s:
        agent = repo.get_agent(s, OLD.name)
        names = {x.name for x in secret_store.names(s, agent_pk=agent.id)}
        if BACKUP_IDENTITY_SECRET not in names:
            return agent.backup_recipient, ""
        identity = secret_store.get(s, ring, agent_pk=agent.id, name=BACKUP_IDENTITY_SECRET)
        return agent.backup_recipient, recipient_of(identity)


def audit(engine: Any) -> list[dict[str, Any]]:
    import json

    from sqlmodel import select

    from fatctl.state.models import AuditEvent

    with session_scope(engine) as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.action == "backup.keys")).all()
        return [json.loads(r.detail) if isinstance(r.detail, str) else r.detail for r in rows]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url="unused")


def test_backup_paths_refuse_an_agent_without_a_key_naming_the_command(
    migrated_engine: Any, keyring: Any, settings: Settings
) -> None:
    create_agent(migrated_engine, keyring, OLD, "t")  # no provision: no material step ran
    target = SimpleNamespace(name=OLD.name, user="root")
    with pytest.raises(FatctlError) as refused:
        take_backup(migrated_engine, NoBox(), target)  # type: ignore[arg-type]
    line = refused.value.one_line()
    assert "\n" not in line and "`fatctl backup keys oldie`" in line
    with pytest.raises(FatctlError, match="fatctl backup keys oldie"):
        backup_identity(migrated_engine, keyring, OLD.name)
    # An upgrade with backup first on R2 storage refuses too, instead of skipping the backup.
    on_r2 = replace(settings, r2_endpoint="http://r2")
    run = SimpleNamespace(engine=migrated_engine, settings=on_r2)
    with pytest.raises(FatctlError) as step:
        _backs_up(run, OLD.name)  # type: ignore[arg-type]
    assert "fatctl backup keys oldie" in step.value.one_line()
    assert "--no-backup" in step.value.one_line()
    # Without R2 storage a box has no state backups at all: the rollout goes on as before.
    no_r2 = SimpleNamespace(engine=migrated_engine, settings=settings)
    assert _backs_up(no_r2, OLD.name) is False  # type: ignore[arg-type]


def test_backup_keys_makes_a_sealed_key_once_and_records_it(
    migrated_engine: Any, keyring: Any, settings: Settings
) -> None:
    create_agent(migrated_engine, keyring, OLD, "t")
    done = push(migrated_engine, keyring, settings, OLD.name, "t", backup_key_change(keyring))
    assert (done.action, done.applied) == ("backup.keys", "recorded")  # no box yet: recorded
    recipient, derived = key_of(migrated_engine, keyring)
    assert is_recipient(recipient) and recipient == derived
    again = push(migrated_engine, keyring, settings, OLD.name, "t", backup_key_change(keyring))
    assert again.applied == "recorded"
    assert key_of(migrated_engine, keyring)[0] == recipient  # kept, not replaced
    made = [d.get("made") for d in audit(migrated_engine)]
    assert made == ["backup-identity", "none (kept)"]
    assert all(d.get("recipient") == recipient for d in audit(migrated_engine))
    assert "AGE-SECRET-KEY" not in str(audit(migrated_engine))  # the identity is never shown
    # Once keyed, the backup paths no longer refuse for want of a key.
    assert backup_identity(migrated_engine, keyring, OLD.name).reveal().startswith("AGE-SECRET")


def test_a_lost_recipient_is_derived_not_replaced(
    migrated_engine: Any, keyring: Any, settings: Settings
) -> None:
    """Backups already taken must stay openable: an existing identity is never replaced."""
    create_agent(migrated_engine, keyring, OLD, "t")
    push(migrated_engine, keyring, settings, OLD.name, "t", backup_key_change(keyring))
    recipient, _ = key_of(migrated_engine, keyring)
    with session_scope(migrated_engine) as s:
        repo.get_agent(s, OLD.name).backup_recipient = ""
    push(migrated_engine, keyring, settings, OLD.name, "t", backup_key_change(keyring))
    assert key_of(migrated_engine, keyring) == (recipient, recipient)
    assert audit(migrated_engine)[-1]["made"] == "recipient"
