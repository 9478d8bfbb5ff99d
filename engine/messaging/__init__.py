"""The outbox's moving parts: claims on batches (claims) and recording outcomes (outcomes).
The dispatcher that drives them is engine.outbox."""
