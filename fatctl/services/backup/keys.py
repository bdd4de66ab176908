"""An agent's backup key: the age identity sealed under `backup-identity`, its public recipient
in `agents.backup_recipient`. Provisioning's `material` step makes it for every new agent;
`fatctl backup keys AGENT` makes it for an agent provisioned before backup keys existed, as a
serving change (`services.serving.push`), so the box gets what provisioning now renders for it:
`fat-backup`, the recipient, the policy and the enabled timer (`cloud_init.files` renders them
only for an agent with R2 storage and a recipient). The identity itself never goes to the box
here: it travels only for a restore or verify (`on_box`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fatctl import backup_keys
from fatctl.errors import FatctlError
from fatctl.services.common.secret_names import BACKUP_IDENTITY_SECRET
from fatctl.services.serving.changes import Change
from fatctl.state import secret_store

if TYPE_CHECKING:
    from sqlmodel import Session

    from fatctl.secrets import KeyRing
    from fatctl.services.serving.push import ChangeFn
    from fatctl.state.models import Agent

KEYS_ACTION = "backup.keys"


class NoBackupKey(FatctlError):
    """The agent has no backup key yet (provisioned before backup keys existed)."""


def no_key_error(agent: str) -> NoBackupKey:
    """The one refusal every backup path gives an agent without a key, naming the command."""
    return NoBackupKey(f"agent {agent} has no backup key (provisioned before backup keys "
                       f"existed): run `fatctl backup keys {agent}`")  # fmt: skip


def ensure_backup_key(session: Session, ring: KeyRing, agent: Agent) -> str:
    """Make what is missing of the agent's backup key in `session`: both halves when there is
    no identity (a recipient without its identity would make backups nobody can open), the
    recipient alone when only it was lost (derived: backups already taken stay openable).
    Returns what was made: `backup-identity`, `recipient` or `""`."""
    pk = agent.id or 0
    if BACKUP_IDENTITY_SECRET not in {s.name for s in secret_store.names(session, agent_pk=pk)}:
        identity, agent.backup_recipient = backup_keys.generate()
        secret_store.put(session, ring, agent_pk=pk, name=BACKUP_IDENTITY_SECRET, value=identity)
        session.add(agent)
        return "backup-identity"
    if not agent.backup_recipient:
        identity = secret_store.get(session, ring, agent_pk=pk, name=BACKUP_IDENTITY_SECRET)
        agent.backup_recipient = backup_keys.recipient_of(identity)
        session.add(agent)
        return "recipient"
    return ""


def backup_key_change(ring: KeyRing) -> ChangeFn:
    """The `ChangeFn` of `fatctl backup keys`: the key made (or kept), the public recipient
    and what was made in the audit detail (never the identity)."""

    def change(session: Session, agent: Agent) -> Change:
        made = ensure_backup_key(session, ring, agent)
        return Change(KEYS_ACTION, {"made": made or "none (kept)",
                                    "recipient": agent.backup_recipient})  # fmt: skip

    return change
