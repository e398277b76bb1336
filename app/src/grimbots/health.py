"""The ``/health`` report, in the original JSON shape, the lighter ``/ready`` check, and ``/livez``.

A failed check reports the error's type only (``OperationalError``); its text, which can name
internal addresses and users, goes to the log. ``/livez`` asks nothing but the process: it is the
load balancer's check, so that a database outage does not take every app server out of it.

``healthy``: database and both Redis roles answer, every queue has a worker and at most
``queue_backlog_alert`` jobs. ``degraded`` (still HTTP 200): a queue has no worker or too many jobs.
``unhealthy`` (HTTP 503): the database or Redis does not answer.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from rq import Worker
from sqlalchemy import text

from . import __version__, metrics
from .services import Services
from .settings import QUEUE_NAMES

log = logging.getLogger(__name__)


def _timed(name: str, check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = {"status": "ok", **(check() or {})}
    except Exception as exc:
        log.warning("health check %s failed: %s: %s", name, type(exc).__name__, exc)
        result = {"status": "error", "error": type(exc).__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _database(services: Services) -> None:
    with services.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _redis(services: Services) -> dict[str, Any]:
    cache = services.redis.cache
    cache.ping()
    services.redis.queue.ping()
    clients = cache.info("clients")
    memory = cache.info("memory")
    return {
        "clients": _sum_over_nodes(clients, "connected_clients"),
        "memory_used_bytes": _sum_over_nodes(memory, "used_memory"),
        **services.redis.pool_stats(),
    }


def _sum_over_nodes(info: dict[str, Any], field: str) -> int:
    # Redis Cluster answers INFO per node ({"host:port": {...}}); a standalone server answers flat.
    if field in info:
        return int(info[field])
    return sum(int(node.get(field, 0)) for node in info.values() if isinstance(node, dict))


def _rq_workers(services: Services) -> dict[str, Any]:
    queues = {}
    for name in QUEUE_NAMES:
        queue = services.queue(name)
        size = queue.count
        metrics.rq_queue_size.labels(queue=name).set(size)
        queues[name] = {"workers": Worker.count(queue=queue), "size": size}
    return {"queues": queues}


def report(services: Services) -> tuple[dict[str, Any], int]:
    checks = {
        "database": _timed("database", lambda: _database(services)),
        "redis": _timed("redis", lambda: _redis(services)),
        "rq_workers": _timed("rq_workers", lambda: _rq_workers(services)),
    }
    status = "healthy"
    if checks["database"]["status"] != "ok" or checks["redis"]["status"] != "ok":
        status = "unhealthy"
    elif checks["rq_workers"]["status"] != "ok":
        status = "degraded"
    else:
        limit = services.settings.queue_backlog_alert
        for queue in checks["rq_workers"]["queues"].values():
            if queue["workers"] == 0 or queue["size"] > limit:
                status = "degraded"
    body = {
        "status": status,
        "timestamp": datetime.now(UTC).isoformat(),
        "version": __version__,
        "checks": checks,
    }
    return body, 503 if status == "unhealthy" else 200


def ready(services: Services) -> tuple[dict[str, Any], int]:
    """Can this process serve requests: database and queue Redis answer. Workers are not asked."""
    checks = {
        "database": _timed("database", lambda: _database(services)),
        "queue_redis": _timed("queue_redis", lambda: services.redis.queue.ping() and None),
    }
    ok = all(c["status"] == "ok" for c in checks.values())
    return {"status": "ready" if ok else "not_ready", "checks": checks}, 200 if ok else 503
