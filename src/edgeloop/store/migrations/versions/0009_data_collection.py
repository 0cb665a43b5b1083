"""data collection: opt-in devices, collection requests and uploaded samples

Revision ID: 0009_data_collection
Revises: 0008_monitors
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_data_collection"
down_revision = "0008_monitors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column("data_collection", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "collections",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset", sa.String(length=256), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.Column("devices_requested", sa.Integer(), nullable=False),
        sa.Column("samples_per_device", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=True),
        sa.Column("group_name", sa.String(length=128), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("layout", sa.JSON(), nullable=False),
        sa.Column("arrow_schema", sa.Text(), nullable=False),
        sa.Column("data_schema", sa.JSON(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_by", sa.String(length=256), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("parent", sa.String(length=300), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
    )
    op.create_index("ix_collections_state", "collections", ["state"], unique=False)
    op.create_table(
        "collection_devices",
        sa.Column("collection_id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("uploaded", sa.Integer(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_collection_devices_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("collection_id", "device_id", name=op.f("pk_collection_devices")),
    )
    op.create_index(
        "ix_collection_devices_device",
        "collection_devices",
        ["device_id", "done"],
        unique=False,
    )
    op.create_table(
        "collection_uploads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("collection_id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("upload_id", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("labelled", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_collection_uploads_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_uploads")),
        sa.UniqueConstraint(
            "collection_id", "device_id", "upload_id", name="uq_collection_uploads_key"
        ),
    )


def downgrade() -> None:
    op.drop_table("collection_uploads")
    op.drop_index("ix_collection_devices_device", table_name="collection_devices")
    op.drop_table("collection_devices")
    op.drop_index("ix_collections_state", table_name="collections")
    op.drop_table("collections")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("data_collection")
