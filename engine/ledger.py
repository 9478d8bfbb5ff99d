"""The bonus ledger's daily expiry job and a customer's detailed balance (engine.points)."""

from __future__ import annotations

from engine.points.balance import balance
from engine.points.expiry import expire

__all__ = ["balance", "expire"]
