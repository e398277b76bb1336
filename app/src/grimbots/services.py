"""The per-process bundle of what handlers and jobs use: settings, engine, Redis, queues, outbound client.

The web app builds one in ``create_app``; a worker process builds one at start and installs it, so RQ
jobs (plain functions) can reach it through :func:`current`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from sqlalchemy import Engine, RowMapping, select

from .outbound import OutboundClient
from .redis_connections import RedisConnections
from .settings import QUEUE_NAMES, Settings
from .storage import bots, make_engine

BOT_CACHE_SECONDS = 60
FAILED_JOB_TTL = 7 * 24 * 3600
RETRY_INTERVALS = [1, 5, 15]  # seconds; needs a worker running with the scheduler
# Jobs are JSON, not pickle: whoever can write the queue Redis can queue work, but cannot run code.
JOB_SERIALIZER = JSONSerializer
# Seconds past its timeout after which a job still marked started is taken for dead (its worker was
# killed; RQ's own clean-up of such jobs runs only every few minutes).
STARTED_GRACE_SECONDS = 30


def charge_job_id(payment_id: str) -> str:
    """The id of a payment's charge job (one job per payment at a time: ``Services.enqueue_once``)."""
    return f"charge-{payment_id}"


@dataclass
class Services:
    settings: Settings
    engine: Engine
    redis: RedisConnections
    outbound: OutboundClient
    _queues: dict[str, Queue] = field(default_factory=dict)
    _bots: dict[tuple[str, object], tuple[float, RowMapping]] = field(default_factory=dict)

    def bot(self, *, bot_id: int | None = None, slug: str | None = None) -> RowMapping | None:
        """A bot by id or slug; found bots are cached in this process for a minute."""
        column, value = ("id", bot_id) if bot_id is not None else ("slug", slug)
        cached = self._bots.get((column, value))
        if cached and cached[0] > time.monotonic():
            return cached[1]
        with self.engine.connect() as conn:
            row = conn.execute(select(bots).where(bots.c[column] == value)).mappings().first()
        if row is not None:  # misses are not cached: a bot created a moment ago must be found
            self._bots[(column, value)] = (time.monotonic() + BOT_CACHE_SECONDS, row)
        return row

    def queue(self, name: str) -> Queue:
        if name not in QUEUE_NAMES:
            raise ValueError(f"unknown queue {name!r}; expected one of {', '.join(QUEUE_NAMES)}")
        if name not in self._queues:
            self._queues[name] = Queue(
                name,
                connection=self.redis.queue,
                default_timeout=self.settings.job_timeout_seconds,
                serializer=JOB_SERIALIZER,
            )
        return self._queues[name]

    def enqueue(self, queue: str, func: str, *args: Any, job_id: str | None = None) -> None:
        self.queue(queue).enqueue(
            func,
            *args,
            job_id=job_id,
            result_ttl=0,
            failure_ttl=FAILED_JOB_TTL,
            retry=Retry(max=3, interval=RETRY_INTERVALS),
        )

    def enqueue_once(self, queue: str, func: str, *args: Any, job_id: str) -> bool:
        """Queue the job under ``job_id`` unless a job with that id will run anyway: waiting in the
        queue, running (started within its timeout), scheduled for a retry. The reconciler's and a
        retried request's way of not doubling work. True if queued now."""
        if self._will_run(queue, job_id):
            return False
        self.enqueue(queue, func, *args, job_id=job_id)
        return True

    def _will_run(self, queue: str, job_id: str) -> bool:
        try:
            job = Job.fetch(job_id, connection=self.redis.queue, serializer=JOB_SERIALIZER)
        except NoSuchJobError:
            return False
        status = job.get_status()
        if status == JobStatus.QUEUED:  # the hash can outlive its queue entry (a failover lost it)
            return self.redis.queue.lpos(self.queue(queue).key, job_id) is not None
        if status == JobStatus.STARTED:
            started = job.started_at
            if started is None:
                return False
            started = started if started.tzinfo else started.replace(tzinfo=UTC)
            limit = (job.timeout or self.settings.job_timeout_seconds) + STARTED_GRACE_SECONDS
            return (datetime.now(UTC) - started).total_seconds() < limit
        return status in (JobStatus.SCHEDULED, JobStatus.DEFERRED)

    def close(self) -> None:
        self.redis.close()
        self.engine.dispose()


def build(settings: Settings, *, interactive: bool = False) -> Services:
    """The services of one process; ``interactive`` for the web app (bounded Redis retries)."""
    return Services(
        settings=settings,
        engine=make_engine(settings),
        redis=RedisConnections(settings, interactive=interactive),
        outbound=OutboundClient(settings),
    )


_current: Services | None = None


def install(services: Services) -> None:
    """Make ``services`` the ones RQ jobs in this process use."""
    global _current
    _current = services


def current() -> Services:
    """The services RQ jobs use; built from the environment on first use if none was installed."""
    if _current is None:
        install(build(Settings.from_env()))
    assert _current is not None
    return _current
