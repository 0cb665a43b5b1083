"""monitors: predictions, labels, monitors, reports, alert rules, alerts and actions

Revision ID: 0008_monitors
Revises: 0007_monitoring_windows
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

revision = "0008_monitors"
down_revision = "0007_monitoring_windows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """No tables yet."""


def downgrade() -> None:
    """No tables yet."""
