"""API tokens and idempotency keys for `fatctl serve`

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 02:00:00

Issue 19. `api_tokens` keeps a bearer token's name, scopes and SHA-256 (never the token),
with its expiry, revocation and last use. `idempotency_keys` keeps, per token, the hash of an
`Idempotency-Key` a create carried, the request's fingerprint and the answer, so a retried
create returns the same agent and starts nothing new.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", AutoString(length=64), nullable=False),
        sa.Column("token_sha256", AutoString(length=64), nullable=False),
        sa.Column("scopes", AutoString(length=200), nullable=False),
        sa.Column("created_by", AutoString(length=100), nullable=False),
        _ts("created_at", False),
        _ts("expires_at", True),
        _ts("revoked_at", True),
        _ts("last_used_at", True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_api_tokens_name"), "api_tokens", ["name"], unique=True)
    op.create_index(op.f("ix_api_tokens_token_sha256"), "api_tokens", ["token_sha256"], unique=True)
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("key_sha256", AutoString(length=64), nullable=False),
        sa.Column("request_sha256", AutoString(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", AutoString(length=2000), nullable=False),
        sa.Column("agent", AutoString(length=40), nullable=False),
        _ts("created_at", False),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_id", "key_sha256", name="uq_idempotency_token_key"),
    )
    op.create_index(
        op.f("ix_idempotency_keys_token_id"), "idempotency_keys", ["token_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_keys_token_id"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_api_tokens_token_sha256"), table_name="api_tokens")
    op.drop_index(op.f("ix_api_tokens_name"), table_name="api_tokens")
    op.drop_table("api_tokens")
