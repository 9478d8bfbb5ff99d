"""Loyalty points: credits (campaign accruals, manual adjustments) that may be pending and
expire, redemptions that take from the credits expiring first, the daily expiry job and the
detailed balance."""

from engine.points.adjust import Booked, PointsSchema, adjust
from engine.points.balance import balance
from engine.points.expiry import expire

__all__ = ["Booked", "PointsSchema", "adjust", "balance", "expire"]
