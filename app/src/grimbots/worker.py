"""``grimbots-worker <queue>``: one RQ worker on one queue (``tasks``, ``gateway`` or ``webhook``).

A ``SimpleWorker`` runs jobs in its own process (no fork per job), so the process keeps one Redis pool
and one database pool, as the units expect; systemd restarts the process if a job kills it.

SIGTERM (``systemctl stop``/``restart``, so every deploy) is a warm shutdown that never drops a job: see
``Worker``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from typing import Any

from rq import SimpleWorker

from . import metrics
from .services import JOB_SERIALIZER, build, install
from .settings import QUEUE_NAMES, Settings, SettingsError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="grimbots-worker", description=__doc__.splitlines()[0])
    parser.add_argument("queue", help=f"one of: {', '.join(QUEUE_NAMES)}")
    parser.add_argument("--name", help="worker name shown by /health and rq info (default: RQ's own)")
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    parser.add_argument("--no-scheduler", action="store_true", help="do not run RQ's scheduler (retries)")
    args = parser.parse_args(argv)
    if args.queue not in QUEUE_NAMES:
        # The seed passed the unit instance ("tasks-1") as the queue name; refuse it loudly.
        parser.error(f"unknown queue {args.queue!r}; expected one of {', '.join(QUEUE_NAMES)}")
    return args


class Worker(SimpleWorker):
    """A ``SimpleWorker`` whose stop request is only a flag, checked between jobs and between short waits.

    RQ's own handler raises ``StopRequested`` out of the signal handler whenever the worker is not busy,
    which includes the instant between the queue pop and the start of the job: the job just taken off
    the queue is then in no queue and no registry, and only the reconciler finds it, a minute later.
    Here the handler sets the flag, the pop waits at most ``STOP_POLL_SECONDS`` at a time, and a job
    popped after the signal still runs before the process exits; systemd's ``TimeoutStopSec`` is far
    longer than a wait plus one job.
    """

    STOP_POLL_SECONDS = 2

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", JOB_SERIALIZER)
        super().__init__(*args, **kwargs)

    def _shutdown(self) -> None:
        self._stop_requested = True
        self.set_shutdown_requested_date()
        if self.scheduler:
            self.stop_scheduler()

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        if timeout is None:  # burst mode: one non-blocking pop
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        idle_until = None if max_idle_time is None else time.monotonic() + max_idle_time
        while not self._stop_requested:
            wait = min(timeout, self.STOP_POLL_SECONDS)
            if idle_until is not None:
                left = math.ceil(idle_until - time.monotonic())
                if left <= 0:
                    return None
                wait = min(wait, left)
            result = super().dequeue_job_and_maintain_ttl(wait, max_idle_time=wait)
            if result is not None:
                return result
        return None


def clear_dead_namesake(worker: SimpleWorker) -> bool:
    """Retire a registration left under this worker's name by a process that died without saying so.

    A named worker is one systemd unit (``rq-worker@tasks-1`` runs ``--name <host>-tasks-1``) and systemd
    runs one process per unit, so a live registration under the name can only be a predecessor killed
    hard (``kill -9``, OOM). RQ would refuse the name until that registration expires (minutes), and the
    unit would crash-loop. Its job in hand is left to RQ's abandoned-job cleanup and to the reconciler.
    """
    connection = worker.connection
    if connection.exists(worker.key) and not connection.hexists(worker.key, "death"):
        logging.getLogger(__name__).warning(
            "worker %s: retiring the registration of a dead predecessor", worker.name
        )
        worker.register_death()
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"grimbots-worker: {exc}", file=sys.stderr)
        return 2
    timeout = settings.redis_queue_socket_timeout
    if timeout and timeout <= Worker.STOP_POLL_SECONDS:
        print(
            f"grimbots-worker: GRIMBOTS_REDIS_QUEUE_SOCKET_TIMEOUT ({timeout:g}) must be more than the "
            f"worker's blocking pop ({Worker.STOP_POLL_SECONDS} s), or 0",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    services = build(settings)
    install(services)
    worker = Worker([services.queue(args.queue)], connection=services.redis.queue, name=args.name)
    if args.name:
        clear_dead_namesake(worker)
    try:
        worker.work(burst=args.burst, with_scheduler=not args.no_scheduler, logging_level=settings.log_level)
    finally:
        metrics.mark_process_dead(os.getpid())
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
