"""golden images built by `fatctl image build`

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 21:10:00

One row per build of a golden Hetzner snapshot (runtime and Node versions, the stock image it
started from, the snapshot's id, how the build ended). The snapshot's labels at Hetzner are
what provisioning looks images up by; this table is the history and the audit of builds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _text(length: int) -> AutoString:
    return AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "golden_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("runtime_version", _text(32), nullable=False),
        sa.Column("node_version", _text(32), nullable=False),
        sa.Column("base_image", _text(64), nullable=False),
        sa.Column("architecture", _text(8), nullable=False),
        sa.Column("builder", _text(64), nullable=False),
        sa.Column("image_id", _text(32), nullable=False),
        sa.Column("state", _text(16), nullable=False),
        sa.Column("actor", _text(100), nullable=False),
        sa.Column("error", _text(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("golden_images", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_golden_images_runtime_version"), ["runtime_version"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_golden_images_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("golden_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_golden_images_state"))
        batch_op.drop_index(batch_op.f("ix_golden_images_runtime_version"))
    op.drop_table("golden_images")
