"""/health in the original shape, /ready, /metrics with the named series."""

from __future__ import annotations

import dataclasses

from rq import SimpleWorker

from grimbots.services import JOB_SERIALIZER, build
from grimbots.settings import QUEUE_NAMES
from grimbots.web import create_app

from .servers import HOST, free_port
from .test_hot_paths import start_update


def register_workers(services) -> list[SimpleWorker]:
    """Real RQ worker registrations (one per queue), without running them."""
    workers = []
    for name in QUEUE_NAMES:
        worker = SimpleWorker(
            [services.queue(name)], connection=services.redis.queue, serializer=JOB_SERIALIZER
        )
        worker.register_birth()
        workers.append(worker)
    return workers


def test_health_degraded_without_workers_then_healthy(client, services):
    response = client.get("/health")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert set(body) == {"status", "timestamp", "version", "checks"}
    assert body["checks"]["database"]["status"] == "ok"
    redis_check = body["checks"]["redis"]
    assert redis_check["status"] == "ok"
    assert {"clients", "memory_used_bytes", "pool_size", "pool_in_use", "pool_available"} <= set(redis_check)
    assert body["checks"]["rq_workers"]["queues"]["tasks"] == {"workers": 0, "size": 0}

    workers = register_workers(services)
    try:
        body = client.get("/health").get_json()
        assert body["status"] == "healthy"
        assert all(q["workers"] == 1 for q in body["checks"]["rq_workers"]["queues"].values())
    finally:
        for worker in workers:
            worker.register_death()


def test_health_degraded_on_backlog(settings, services):
    app = create_app(
        services=dataclasses.replace(services, settings=dataclasses.replace(settings, queue_backlog_alert=2))
    )
    workers = register_workers(services)
    try:
        for update_id in range(3):
            services.enqueue("tasks", "grimbots.tasks.handle_telegram_update", 1, start_update(update_id, 1))
        body = app.test_client().get("/health").get_json()
        assert body["status"] == "degraded"
        assert body["checks"]["rq_workers"]["queues"]["tasks"]["size"] == 3
    finally:
        for worker in workers:
            worker.register_death()


def test_unhealthy_is_503_when_redis_is_down(settings):
    dead = f"redis://{HOST}:{free_port()}/0"
    broken = build(dataclasses.replace(settings, redis_cache_url=dead, redis_cache_cluster_nodes=()))
    client = create_app(services=broken).test_client()
    response = client.get("/health")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unhealthy"
    assert "error" in response.get_json()["checks"]["redis"]
    assert client.get("/ready").status_code == 200  # the queue Redis and database still answer
    broken.close()


def test_ready(client):
    response = client.get("/ready")
    assert response.status_code == 200 and response.get_json()["status"] == "ready"


def test_metrics_names(client, services):
    client.post("/webhook/telegram/1", json=start_update(1, 1))
    client.post(
        "/webhook/telegram/1", json=start_update(1, 1)
    )  # duplicate: dedup_hits_total{layer=update_id}
    text = client.get("/metrics").get_data(as_text=True)
    for name in (
        "http_request_duration_seconds_bucket",
        'dedup_hits_total{layer="update_id"}',
        'rq_queue_size{queue="tasks"} 1.0',
        "telegram_messages_received_total",
    ):
        assert name in text, name
