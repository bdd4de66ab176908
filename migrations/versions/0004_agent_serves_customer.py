"""what the agent serves: its model, its channels and who may talk to it

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 15:00:00

`agents.model` / `agents.model_base_url` choose the model ("" = the plan's default); channels
are one row per kind with their credentials sealed in `secrets`; senders are the allowlist the
box renders into each channel's policy. Existing agents keep the plan default and get their
owner's address as their first allowed sender (the seeds: the signup address is always allowed).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _text(length: int) -> AutoString:
    return AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model", _text(200), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("model_base_url", _text(300), nullable=False, server_default="")
        )
    op.create_table(
        "agent_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_pk", sa.Integer(), nullable=False),
        sa.Column("kind", _text(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_pk"], ["agents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_pk", "kind", name="uq_agent_channel_kind"),
    )
    op.create_index("ix_agent_channels_agent_pk", "agent_channels", ["agent_pk"])
    op.create_table(
        "agent_senders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_pk", sa.Integer(), nullable=False),
        sa.Column("kind", _text(16), nullable=False),
        sa.Column("value", _text(254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_pk"], ["agents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_pk", "kind", "value", name="uq_agent_sender"),
    )
    op.create_index("ix_agent_senders_agent_pk", "agent_senders", ["agent_pk"])
    op.execute(
        "INSERT INTO agent_senders (agent_pk, kind, value, created_at) "
        "SELECT agents.id, 'email', lower(owners.email), agents.created_at "
        "FROM agents JOIN owners ON owners.id = agents.owner_id"
    )


def downgrade() -> None:
    op.drop_index("ix_agent_senders_agent_pk", table_name="agent_senders")
    op.drop_table("agent_senders")
    op.drop_index("ix_agent_channels_agent_pk", table_name="agent_channels")
    op.drop_table("agent_channels")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("model_base_url")
        batch_op.drop_column("model")
