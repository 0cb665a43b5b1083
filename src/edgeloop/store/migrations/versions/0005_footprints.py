"""model footprints per target

Revision ID: 0005_footprints
Revises: 0004
Create Date: 2026-11-25 10:12:40.118305
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_footprints"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_footprints",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("footprint", sa.JSON(), nullable=False),
        sa.Column("measured_at", sa.BigInteger(), nullable=False),
        sa.Column("measured_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_footprints_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_version_id", "target", name=op.f("pk_model_footprints")),
    )


def downgrade() -> None:
    op.drop_table("model_footprints")
