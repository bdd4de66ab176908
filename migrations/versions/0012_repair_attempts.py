"""Repair attempts and holds of the automatic repair ladder

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 06:00:00

Issue 20. `repair_attempts` records each rung the ladder ran on an agent's box (restart,
reboot, rebuild) and each page (the ladder gave up): when it started and finished, how it
ended, and a short one-line detail (never a secret). The policy reads it back to walk the
ladder and to refuse loops. `repair_holds` is one row per agent left alone by repair: an
operator's `fatctl repair hold`, or a page fatctl set itself; `fatctl repair release` deletes
it. Both go with the agent (ON DELETE CASCADE).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _agent_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["agent_pk"], ["agents.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "repair_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_pk", sa.Integer(), nullable=False),
        sa.Column("rung", AutoString(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", AutoString(length=16), nullable=False),
        sa.Column("detail", AutoString(length=300), nullable=False),
        _agent_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_repair_attempts_agent_pk_started_at", "repair_attempts", ["agent_pk", "started_at"]
    )
    op.create_table(
        "repair_holds",
        sa.Column("agent_pk", sa.Integer(), nullable=False),
        sa.Column("kind", AutoString(length=16), nullable=False),
        sa.Column("actor", AutoString(length=100), nullable=False),
        sa.Column("reason", AutoString(length=300), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        _agent_fk(),
        sa.PrimaryKeyConstraint("agent_pk"),
    )


def downgrade() -> None:
    op.drop_table("repair_holds")
    op.drop_index("ix_repair_attempts_agent_pk_started_at", table_name="repair_attempts")
    op.drop_table("repair_attempts")
