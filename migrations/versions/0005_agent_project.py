"""the Hetzner project each agent lives in

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 22:00:00

A fleet may span several Hetzner projects ([hcloud.projects.NAME] in fatctl.toml), since
Hetzner's limits (servers, primary IPs, the request budget) are per project. `agents.project`
records where provisioning placed each agent; existing agents live in the top level's project,
"" (a fleet without projects keeps working exactly as before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("project", AutoString(length=32), nullable=False, server_default="")
        )
        batch_op.create_index("ix_agents_project", ["project"])


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index("ix_agents_project")
        batch_op.drop_column("project")
