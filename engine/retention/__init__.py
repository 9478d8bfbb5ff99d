"""Keeping the activity log and the outbox to a useful size: whole old months pruned, and a
watermark so that no date before it can be run again (engine.retention.prune)."""
