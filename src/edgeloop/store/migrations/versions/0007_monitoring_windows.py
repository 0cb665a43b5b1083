"""monitoring windows: mergeable sketch windows from devices and other sources

Revision ID: 0007_monitoring_windows
Revises: 0006_fleet
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

revision = "0007_monitoring_windows"
down_revision = "0006_fleet"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """No tables yet."""


def downgrade() -> None:
    """No tables yet."""
