"""Worker heartbeats and the rate budgets shared by all workers

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 09:00:00

Issue 19, Workers. `worker_heartbeats` is one row per running service process (`fatctl worker`,
`fatctl serve`) under its DBOS executor id: when it last beat. A live worker that sees a row
older than the timeout claims it (`taken_by`, `taken_at`: one UPDATE, so one claimant wins),
re-enqueues that executor's PENDING workflows and deletes the row. `rate_budgets` is one row
per cloud API budget (`hetzner`, `hetzner:<project>`, `cloudflare`): the estimate of the
server's bucket that every process takes its requests' tokens from, under a row lock.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("executor_id", AutoString(length=100), nullable=False),
        sa.Column("host", AutoString(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_by", AutoString(length=100), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("executor_id"),
    )
    op.create_table(
        "rate_budgets",
        sa.Column("api", AutoString(length=100), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=True),
        sa.Column("tokens", sa.Float(), nullable=True),
        sa.Column("rate", sa.Float(), nullable=True),
        sa.Column("stamp", sa.Float(), nullable=False),
        sa.Column("reset_at", sa.Float(), nullable=True),
        sa.Column("span", sa.Float(), nullable=True),
        sa.Column("granted", sa.BigInteger(), nullable=False),
        sa.Column("waits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("api"),
    )


def downgrade() -> None:
    op.drop_table("rate_budgets")
    op.drop_table("worker_heartbeats")
