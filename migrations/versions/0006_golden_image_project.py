"""the Hetzner project each golden image lives in

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 22:30:00

A snapshot boots servers only in its own Hetzner project. With several projects in a fleet
(0005) a golden image built in one must not be offered to an agent placed in another, so
`golden_images.project` says where it lives; existing images were built with the top level's
token, project "".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("golden_images", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("project", AutoString(length=32), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("golden_images", schema=None) as batch_op:
        batch_op.drop_column("project")
