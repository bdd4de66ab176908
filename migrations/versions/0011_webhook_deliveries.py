"""Webhook deliveries of `fatctl serve`

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 05:30:00

Issue 19. `webhook_deliveries` keeps each event sent to the platform's webhook (agent ready,
degraded, destroyed, rollout finished): its unique event id, kind, agent, the exact JSON body
(no secret; signatures are made per attempt and not kept), the attempts and the next one's
time, and how it ended (delivered, or dead-lettered with the last error).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", AutoString(length=64), nullable=False),
        sa.Column("kind", AutoString(length=40), nullable=False),
        sa.Column("agent", AutoString(length=40), nullable=True),
        sa.Column("payload", AutoString(), nullable=False),
        _ts("created_at", False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at", True),
        _ts("delivered_at", True),
        _ts("dead_at", True),
        sa.Column("last_error", AutoString(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_event_id"), "webhook_deliveries", ["event_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_event_id"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
