"""monitoring windows: mergeable sketch windows from devices and other sources

Revision ID: 0007_monitoring_windows
Revises: 0006_fleet
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_monitoring_windows"
down_revision = "0006_fleet"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_layouts",
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("layout", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", "model_version", name=op.f("pk_monitoring_layouts")),
    )
    op.create_table(
        "monitoring_windows",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.BigInteger(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_windows")),
        sa.UniqueConstraint(
            "model", "model_version", "source", "window_start", name="uq_monitoring_windows_window"
        ),
    )
    op.create_index(
        "ix_monitoring_windows_version_start",
        "monitoring_windows",
        ["model", "model_version", "window_start"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_monitoring_windows_version_start", table_name="monitoring_windows")
    op.drop_table("monitoring_windows")
    op.drop_table("monitoring_layouts")
