"""probe_results keep what fat-health reported of the box's resources

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 09:00:00

Issue 20, resource guards. A box the sweep asks over SSH (one failing /readyz, or one asked for
its backup) reports its free disk and memory, its channels, and the gateway unit's restarts by
systemd and memory now and at its peak; the row of that probe keeps them, so `fatctl serve`'s
/metrics can expose them per agent (only for the boxes asked: the cardinality stays that of
the boxes in trouble) and the BoxDiskLow, BoxMemoryLow, ChannelDisconnected and
GatewayRestarting alerts have series. All nullable: an HTTPS-only row, or a box that could not
be asked, has none. `channels` is fat-health's channel map as compact JSON, never a secret.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = ("disk_free_mb", "mem_available_mb", "gateway_restarts", "gateway_memory_bytes",
           "gateway_memory_peak_bytes", "channels")  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("probe_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disk_free_mb", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("mem_available_mb", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("gateway_restarts", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("gateway_memory_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("gateway_memory_peak_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("channels", AutoString(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("probe_results", schema=None) as batch_op:
        for column in reversed(COLUMNS):
            batch_op.drop_column(column)
