"""probe history: one row per probe of an agent's box, the last few kept per agent

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 05:10:00

Issue 20. `fatctl serve` sweeps the fleet every few minutes (an HTTPS GET of each agent's
`/readyz`, SSH `fat-health` only for the boxes that fail it) and keeps what it saw here, so
`/metrics` and `fatctl status` answer from the database instead of probing again. The writer
prunes to the newest N rows per agent. `error` is a short reason, never a secret. A row goes
with its agent (ON DELETE CASCADE): history of a purged agent means nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "probe_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_pk", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("via", AutoString(length=8), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("error", AutoString(length=200), nullable=True),
        sa.ForeignKeyConstraint(["agent_pk"], ["agents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_probe_results_agent_pk_at", "probe_results", ["agent_pk", "at"])


def downgrade() -> None:
    op.drop_index("ix_probe_results_agent_pk_at", table_name="probe_results")
    op.drop_table("probe_results")
