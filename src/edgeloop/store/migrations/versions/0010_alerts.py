"""alerts: alert rules, alerts and the actions they ran

Revision ID: 0010_alerts
Revises: 0009_data_collection
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

revision = "0010_alerts"
down_revision = "0009_data_collection"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """No tables yet."""


def downgrade() -> None:
    """No tables yet."""
