"""Monitors: reports of drift and performance per window, alert rules, alerts and actions."""

from __future__ import annotations

__all__: list[str] = []
