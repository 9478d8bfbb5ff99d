"""nudgeflow engine: models, segments, graphs, the executor and the outbox."""
