"""ssh keys remember their Hetzner id and project

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 21:05:00

A fleet key's Hetzner id, recorded when fatctl uploads or adopts it, lets a fresh agent's
server be created without listing the project's keys first (issue 5's call budget). Both
columns are nullable: a key never seen at Hetzner, or seen in another project, has no id.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ssh_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hcloud_id", AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("hcloud_project", AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ssh_keys", schema=None) as batch_op:
        batch_op.drop_column("hcloud_project")
        batch_op.drop_column("hcloud_id")
