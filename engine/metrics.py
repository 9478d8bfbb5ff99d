"""Prometheus metrics. Two kinds:

- gauges read from the database at scrape time by `DatabaseCollector` (messages by status and
  channel, runs of the last day, the last completed run of each campaign), so every web process
  reports the same numbers whichever one is scraped;
- counters and histograms of this process (sends, failures, provider latency, run durations),
  incremented once per provider request or per run, never per message. With
  PROMETHEUS_MULTIPROC_DIR set (prometheus_client's multiprocess mode: every nudgeflow process
  of a machine writes its counters there), a scrape adds up every process's, the `nudgeflow
  worker` processes' too; without it, the answering process's own (and its process metrics).
"""

from __future__ import annotations

import logging
import os
from calendar import timegm
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from engine import health

log = logging.getLogger("nudgeflow.metrics")

SENDS = Counter("nudgeflow_sends", "Messages the providers accepted, by channel.", ["channel"])
SEND_FAILURES = Counter("nudgeflow_send_failures",
                        "Send attempts that did not go out (retried or failed), by channel.",
                        ["channel"])
PROVIDER_LATENCY = Histogram("nudgeflow_provider_request_seconds",
                             "How long a provider took to answer one request, by channel.",
                             ["channel"],
                             buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
RUN_DURATION = Histogram("nudgeflow_run_seconds",
                         "How long a campaign run took, by the run's outcome.", ["status"],
                         buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600))


class DatabaseCollector(Collector):
    """Gauges read from the database when Prometheus scrapes; nudgeflow_database_up is 0 (and
    the others absent) when the database does not answer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("nudgeflow_database_up", "1 if the database answered the scrape.")
        try:
            families = list(self._read())
        except SQLAlchemyError as exc:
            log.warning("metrics: the database did not answer: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> Iterator[Metric]:
        with self.engine.connect() as conn:
            messages = health.messages_by_status(conn)
            queue = health.queue(conn)
            runs = health.runs_by_status(conn)
            last = health.last_completed_runs(conn)
        family = GaugeMetricFamily("nudgeflow_messages", "Messages by status and channel.",
                                   labels=["channel", "status"])
        for status, channel, count in messages:
            family.add_metric([channel, status], count)
        yield family
        yield GaugeMetricFamily("nudgeflow_queue_oldest_due_seconds",
                                "How long the longest-waiting due queued message has waited.",
                                value=queue.oldest_due_seconds)
        family = GaugeMetricFamily("nudgeflow_runs_last_day",
                                   "Runs started in the last 24 hours, by status.",
                                   labels=["status"])
        for status, count in runs:
            family.add_metric([status], count)
        yield family
        family = GaugeMetricFamily("nudgeflow_last_completed_run_timestamp_seconds",
                                   "When each campaign's last completed run finished (Unix time).",
                                   labels=["campaign"])
        for key, finished in last:
            family.add_metric([key], timegm(finished.timetuple()) + finished.microsecond / 1e6)
        yield family


def exposition(engine: Engine) -> bytes:
    """The text exposition: this process's metrics, then the database's gauges."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(DatabaseCollector(engine))
    return generate_latest(_processes()) + generate_latest(scrape)


def _processes() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
