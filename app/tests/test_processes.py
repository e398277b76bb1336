"""The real processes: gunicorn with sd_notify readiness and multiprocess metrics, the stub, the worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import JobStatus

from grimbots.worker import Worker

from .conftest import bin_path, settings_env, telegram_headers
from .servers import HOST, ServerGroup, free_port, wait_for
from .test_hot_paths import start_update

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@sqlite_only
def test_gunicorn_notifies_ready_serves_and_stops_gracefully(settings, tmp_path):
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(30)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    env = settings_env(settings) | {
        "GRIMBOTS_BIND": f"{HOST}:{port}",
        "GRIMBOTS_WEB_WORKERS": "2",
        "NOTIFY_SOCKET": notify_path,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    group = ServerGroup()
    try:
        proc = group.spawn(
            [bin_path("gunicorn"), "-c", "python:grimbots.gunicorn_conf", "grimbots.web:create_app()"],
            "gunicorn", env=env,
        )  # fmt: skip
        assert b"READY=1" in notify.recv(4096)
        base = f"http://{HOST}:{port}"
        wait_for(lambda: http("GET", f"{base}/ready")[0] == 200, "gunicorn /ready")
        for update_id in (1, 2, 3):
            update = start_update(update_id, 5)
            assert http("POST", f"{base}/webhook/telegram/1", update, telegram_headers(1))[0] == 200
        status, metrics = http("GET", f"{base}/metrics")
        assert status == 200
        assert "telegram_messages_received_total 3.0" in metrics.decode()  # summed over both workers
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        notify.close()
        group.stop()


def test_stub_counts_calls_and_injects_errors():
    port = free_port()
    group = ServerGroup()
    try:
        group.spawn([bin_path("grimbots-stub"), "--bind", f"{HOST}:{port}", "--error-rate", "1"], "stub")
        base = f"http://{HOST}:{port}"
        wait_for(lambda: http("GET", f"{base}/stats")[0] == 200, "stub")
        assert http("POST", f"{base}/telegram/bot1:tok/sendMessage", {"chat_id": 1, "text": "hi"})[0] == 500
        assert http("POST", f"{base}/_config", {"error_rate": 0, "latency_ms": 1})[0] == 200
        status, body = http("POST", f"{base}/capi/px1/events", {"data": []})
        assert status == 200 and json.loads(body)["ok"] is True
        stats = json.loads(http("GET", f"{base}/stats")[1])
        assert stats["calls"] == {"telegram": 1, "capi": 1} and stats["errors"] == {"telegram": 1}
        http("POST", f"{base}/_reset", {})
        assert json.loads(http("GET", f"{base}/stats")[1])["total"] == 0
    finally:
        group.stop()


def test_worker_refuses_an_instance_name_as_queue():
    result = subprocess.run(
        [bin_path("grimbots-worker"), "tasks-1"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "unknown queue 'tasks-1'" in result.stderr


@sqlite_only
def test_named_worker_replaces_a_dead_predecessor(settings):
    """kill -9 leaves the worker registered; the unit's next process under the same name must start."""
    env = settings_env(settings)
    queue_redis = redis.Redis.from_url(settings.redis_queue_url)
    stale = SimpleWorker(["tasks"], connection=queue_redis, name="host-tasks-1")
    stale.register_birth()  # what a worker killed with -9 leaves behind: registered, no death
    assert queue_redis.sismember("rq:workers", stale.key)
    result = subprocess.run(
        [bin_path("grimbots-worker"), "tasks", "--name", "host-tasks-1", "--burst", "--no-scheduler"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "retiring the registration of a dead predecessor" in result.stderr
    assert not queue_redis.sismember("rq:workers", stale.key)


# The stock worker is kept as a strict xfail: if an RQ upgrade stops orphaning the job, this says so.
STOCK_ORPHANS = pytest.mark.xfail(strict=True, reason="RQ's handler raises between the pop and the job")


@pytest.mark.parametrize("worker_class", [pytest.param(SimpleWorker, marks=STOCK_ORPHANS), Worker])
@sqlite_only
def test_sigterm_right_after_the_pop_still_runs_the_job(services, monkeypatch, worker_class):
    """The signal lands between the queue pop and the job's start (a deploy restarting the workers).

    RQ's stock handler raises there and the popped job is in no queue and no registry (orphaned until
    the reconciler's stale window); the project's worker runs it, then exits."""
    queue = services.queue("tasks")
    job = queue.enqueue("os.getpid", result_ttl=300)
    real_dequeue_any = Queue.dequeue_any.__func__

    def pop_then_sigterm(cls, *args, **kwargs):
        result = real_dequeue_any(cls, *args, **kwargs)
        if result is not None:
            os.kill(os.getpid(), signal.SIGTERM)
        return result

    monkeypatch.setattr(Queue, "dequeue_any", classmethod(pop_then_sigterm))
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    worker = worker_class([queue], connection=services.redis.queue, name="test-stop-after-pop")
    try:
        worked = worker.work(burst=False, with_scheduler=False)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert worked, "the worker exited without running the job it had popped"
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert queue.count == 0


@sqlite_only
def test_worker_stops_on_sigterm_while_idle(settings):
    """An idle worker notices the stop flag within one short wait and exits 0 (systemd's clean stop)."""
    env = settings_env(settings)
    group = ServerGroup()
    try:
        args = [bin_path("grimbots-worker"), "webhook", "--name", "host-webhook-1"]
        proc = group.spawn(args, "worker", env=env)
        queue_redis = redis.Redis.from_url(settings.redis_queue_url)
        # Idle: RQ registers the worker before it installs its signal handlers, and sets the state idle
        # only once it waits for a job, after them (a SIGTERM in between kills it with the default action).
        wait_for(lambda: queue_redis.hget("rq:worker:host-webhook-1", "state") == b"idle", "worker idle")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=Worker.STOP_POLL_SECONDS * 4) == 0
        assert not queue_redis.sismember("rq:workers", "rq:worker:host-webhook-1")
    finally:
        group.stop()


@sqlite_only
def test_worker_honours_max_idle_time(services):
    """RQ's max_idle_time still ends an idle worker, although the wait is cut into short polls."""
    worker = Worker([services.queue("tasks")], connection=services.redis.queue, name="test-idle")
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert worker.work(burst=False, with_scheduler=False, max_idle_time=2) is False
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
