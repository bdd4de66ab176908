"""unplaced agents have no project; fleet key ids are kept per Hetzner project

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 22:45:00

`agents.project` "" meant both "the top level's project" and "not placed yet", so agents not
yet provisioned counted against the top level's `max_servers`: NULL now says "not placed".
Existing agents with no server and no primary IP were never placed; the rest keep "".

A key lives once in every Hetzner project, under a different id in each, but `ssh_keys` kept
one (hcloud_id, hcloud_project) pair that each project overwrote, so the fleet's keys were
listed again on every switch. `hcloud_key_ids` keeps one id per (key, project). The old ids
are not carried over: they are a cache, and the next provision in a project adopts the keys
there by fingerprint once (one listing) and records them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.alter_column(
            "project", existing_type=AutoString(length=32), nullable=True, server_default=None
        )
    op.execute(
        "UPDATE agents SET project = NULL WHERE project = '' "
        "AND server_id = '' AND primary_ipv4_id = '' AND primary_ipv6_id = ''"
    )
    op.create_table(
        "hcloud_key_ids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", AutoString(length=64), nullable=False),
        sa.Column("project", AutoString(length=32), nullable=False),
        sa.Column("hcloud_id", AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fingerprint", "project", name="uq_hcloud_key_ids_fp_project"),
    )
    with op.batch_alter_table("ssh_keys", schema=None) as batch_op:
        batch_op.drop_column("hcloud_project")
        batch_op.drop_column("hcloud_id")


def downgrade() -> None:
    with op.batch_alter_table("ssh_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hcloud_id", AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("hcloud_project", AutoString(length=32), nullable=True))
    op.drop_table("hcloud_key_ids")
    op.execute("UPDATE agents SET project = '' WHERE project IS NULL")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.alter_column(
            "project", existing_type=AutoString(length=32), nullable=False, server_default=""
        )
