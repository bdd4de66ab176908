"""state backups: the agent's age recipient, suspend/archive, backup and lifecycle-op rows

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 01:30:00

Issue 18 ("state that outlives the box"). `agents.backup_recipient` is the public half of the
agent's age key (the identity is sealed in `secrets`); `suspended_at`/`purge_after` serve the
new `suspended` and `archived` states. `backups` caches what fatctl knows of the encrypted
archives in R2; `lifecycle_ops` makes rebuild/move/suspend/archive resumable;
`rollout_steps.backup_key` names the backup an upgrade step took before it touched the box.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _text(length: int) -> AutoString:
    return AutoString(length=length)


def _ts(name: str, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("backup_recipient", _text(100), nullable=False, server_default="")
        )
        batch_op.add_column(_ts("suspended_at", True))
        batch_op.add_column(_ts("purge_after", True))
    with op.batch_alter_table("rollout_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backup_key", _text(300), nullable=False, server_default=""))
    op.create_table(
        "backups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_pk", sa.Integer(), nullable=False),
        sa.Column("object_key", _text(300), nullable=False),
        sa.Column("kind", _text(24), nullable=False),
        _ts("created_at", False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", _text(64), nullable=False),
        sa.Column("runtime_version", _text(32), nullable=False),
        _ts("verified_at", True),
        sa.ForeignKeyConstraint(["agent_pk"], ["agents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_pk", "object_key", name="uq_backups_agent_object"),
    )
    op.create_index("ix_backups_agent_pk", "backups", ["agent_pk"])
    op.create_table(
        "lifecycle_ops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_pk", sa.Integer(), nullable=False),
        sa.Column("kind", _text(16), nullable=False),
        sa.Column("state", _text(16), nullable=False),
        sa.Column("last_step", _text(32), nullable=False),
        sa.Column("params", _text(2000), nullable=False),
        sa.Column("actor", _text(100), nullable=False),
        sa.Column("error", _text(500), nullable=False),
        _ts("started_at", False),
        _ts("finished_at", True),
        sa.ForeignKeyConstraint(["agent_pk"], ["agents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lifecycle_ops_agent_pk", "lifecycle_ops", ["agent_pk"])
    op.create_index("ix_lifecycle_ops_state", "lifecycle_ops", ["state"])


def downgrade() -> None:
    op.drop_index("ix_lifecycle_ops_state", table_name="lifecycle_ops")
    op.drop_index("ix_lifecycle_ops_agent_pk", table_name="lifecycle_ops")
    op.drop_table("lifecycle_ops")
    op.drop_index("ix_backups_agent_pk", table_name="backups")
    op.drop_table("backups")
    with op.batch_alter_table("rollout_steps", schema=None) as batch_op:
        batch_op.drop_column("backup_key")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("purge_after")
        batch_op.drop_column("suspended_at")
        batch_op.drop_column("backup_recipient")
