"""Prometheus metrics. Multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn workers and
RQ workers on one host share the directory, so one ``/metrics`` scrape sees them all).

Metric objects are declared here once; they hold no connection, only counters in memory or in
the multiprocess directory.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

http_request_duration = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency, by route.",
    ["method", "endpoint", "status"],
    buckets=LATENCY_BUCKETS,
)
dedup_hits = Counter("dedup_hits", "Duplicates stopped, by dedup layer.", ["layer"])
lock_fail_open = Counter(
    "dedup_lock_fail_open",
    "Redis lock checks skipped because Redis failed (a unique constraint still holds).",
    ["layer"],
)
rq_queue_size = Gauge(
    "rq_queue_size", "Jobs waiting, by RQ queue.", ["queue"], multiprocess_mode="mostrecent"
)
webhook_events = Counter("webhook_events", "Payment webhooks, by gateway and outcome.", ["gateway", "result"])
pixel_events_sent = Counter("pixel_events_sent", "Pixel (CAPI) events sent, by event name.", ["event"])
telegram_messages_received = Counter("telegram_messages_received", "Telegram updates accepted.")
telegram_messages_sent = Counter("telegram_messages_sent", "Telegram messages sent.")
telegram_errors = Counter("telegram_errors", "Telegram handling errors, by type.", ["error_type"])
telegram_processing = Histogram(
    "telegram_processing_seconds", "Time a worker spends on one Telegram update.", buckets=LATENCY_BUCKETS
)


def exposition() -> tuple[bytes, str]:
    """The text exposition for ``/metrics``: all processes in multiprocess mode, else this process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Called by gunicorn's ``child_exit`` hook so a dead worker's live gauges disappear."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
