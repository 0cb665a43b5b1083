"""data collection: opt-in devices, collection requests and uploaded samples

Revision ID: 0009_data_collection
Revises: 0008_monitors
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

revision = "0009_data_collection"
down_revision = "0008_monitors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """No tables yet."""


def downgrade() -> None:
    """No tables yet."""
