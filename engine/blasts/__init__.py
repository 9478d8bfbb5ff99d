"""Blasts: a one-off send to a data set's rows (all of them, or those chosen), stored as a
campaign of kind 'blast' with a graph of its own (trigger -> chosen rows -> the data set's
rules -> send-message) that runs once for its as-of date. Its run, messages, activities,
skip reasons, credits, caps, quiet hours and STOP are therefore a campaign's; the blasts row
keeps what only a blast has (the idempotency key, the data set, the selection)."""

from engine.blasts.create import IdempotencyConflict, create
from engine.blasts.request import BlastRequest, BlastSchema, load_request
from engine.blasts.views import blast_id, describe, list_blasts

__all__ = ["BlastRequest", "BlastSchema", "IdempotencyConflict", "blast_id", "create",
           "describe", "list_blasts", "load_request"]
