"""pipeline triggers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 15:49:18.240741
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "pipeline_queue",
        sa.Column("pipeline", sa.String(length=256), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("queued_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", name=op.f("pk_pipeline_queue")),
    )
    op.create_table(
        "trigger_state",
        sa.Column("pipeline", sa.String(length=256), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "key", name=op.f("pk_trigger_state")),
    )


def downgrade() -> None:
    op.drop_table("trigger_state")
    op.drop_table("pipeline_queue")
    op.drop_table("leases")
