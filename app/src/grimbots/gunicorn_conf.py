"""gunicorn settings, from the same ``GRIMBOTS_*`` variables as the app.

    gunicorn -c python:grimbots.gunicorn_conf 'grimbots.web:create_app()'

``Type=notify`` units: gunicorn's arbiter sends ``READY=1`` to ``$NOTIFY_SOCKET`` once it listens;
``when_ready`` adds a status line. ``child_exit`` tells prometheus_client a worker is gone.
"""

from __future__ import annotations

from typing import Any

from gunicorn import systemd

from grimbots import metrics
from grimbots.settings import Settings

_settings = Settings.from_env()

bind = _settings.bind
workers = _settings.web_workers
worker_class = _settings.web_worker_class
threads = _settings.web_threads
timeout = _settings.web_timeout
graceful_timeout = _settings.graceful_timeout
keepalive = _settings.keepalive
max_requests = _settings.max_requests
max_requests_jitter = _settings.max_requests_jitter
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()
proc_name = "grimbots"


def when_ready(server: Any) -> None:
    systemd.sd_notify(f"STATUS=grimbots serving on {bind} with {workers} workers", server.log)


def child_exit(server: Any, worker: Any) -> None:
    metrics.mark_process_dead(worker.pid)
