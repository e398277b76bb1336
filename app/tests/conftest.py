"""Fixtures: real servers per session, a fresh database and empty Redis per test.

``backend`` runs a test twice: phase 1 (SQLite + one standalone Redis for both roles) and phase 3
(PostgreSQL + Redis Cluster cache + Sentinel-watched queue Redis).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from redis.cluster import ClusterNode, RedisCluster
from rq import SimpleWorker
from sqlalchemy import create_engine, insert, text

from grimbots import migrate, telegram_auth
from grimbots import services as services_module
from grimbots.services import JOB_SERIALIZER, Services, build
from grimbots.settings import QUEUE_NAMES, Settings
from grimbots.storage import bots, utcnow
from grimbots.stub import StubServer, StubState

from . import servers

GATEWAY_SECRET = "test-secret"
TELEGRAM_SECRET = "test-telegram-webhook-secret-0123456789"
TELEGRAM_PATH = re.compile(r"/webhook/telegram/(\d+)")


def telegram_headers(bot_id: int) -> dict[str, str]:
    """The headers Telegram sends with bot ``bot_id``'s updates (its secret token)."""
    return {telegram_auth.HEADER: telegram_auth.secret_token(TELEGRAM_SECRET, bot_id)}


class TelegramClient(FlaskClient):
    """A test client that sends a Telegram update with its bot's secret token, as Telegram does,
    unless the test gives the header itself."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        path = args[0] if args and isinstance(args[0], str) else kwargs.get("path", "")
        match = TELEGRAM_PATH.fullmatch(path.split("?", 1)[0])
        if match and len(match[1]) < 12:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault(telegram_auth.HEADER, telegram_headers(int(match[1]))[telegram_auth.HEADER])
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)


_db_counter = itertools.count()


@pytest.fixture(scope="session")
def redis_standalone() -> Iterator[str]:
    group = servers.ServerGroup()
    try:
        yield f"redis://{servers.HOST}:{servers.start_redis(group, 'standalone')}/0"
    finally:
        group.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[list[tuple[str, int]]]:
    group = servers.ServerGroup()
    try:
        yield servers.start_cluster(group)
    finally:
        group.stop()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[dict]:
    group = servers.ServerGroup()
    try:
        yield servers.start_sentinel(group)
    finally:
        group.stop()


@dataclasses.dataclass
class Postgres:
    port: int

    def url(self, dbname: str, host: str | None = None) -> str:
        return f"postgresql+psycopg2://postgres@{host or servers.HOST}:{self.port}/{dbname}"

    def execute(self, sql: str) -> None:
        engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def new_database(self, migrated: bool = True) -> str:
        name = f"t{next(_db_counter)}"
        self.execute(f"CREATE DATABASE {name}" + (" TEMPLATE grimbots_template" if migrated else ""))
        return name


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    group = servers.ServerGroup()
    try:
        pg = Postgres(servers.start_postgres(group))
        pg.execute("CREATE DATABASE grimbots_template")
        engine = create_engine(pg.url("grimbots_template"))
        migrate.upgrade(engine)
        engine.dispose()
        yield pg
    finally:
        group.stop()


@pytest.fixture(scope="session")
def stub_server() -> Iterator[StubServer]:
    server = StubServer((servers.HOST, 0), StubState(latency_ms=0, error_rate=0, seed=1))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def stub(stub_server: StubServer) -> StubServer:
    state = stub_server.state
    with state.lock:
        state.calls.clear()
        state.errors.clear()
        state.latency_ms, state.error_rate = 0, 0
    return stub_server


def _flush_cluster(nodes: list[tuple[str, int]]) -> None:
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes])
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    client.close()


def seed_bots(settings: Settings, count: int = 3) -> None:
    engine = create_engine(settings.database_url)
    with engine.begin() as conn:
        for n in range(1, count + 1):
            conn.execute(
                insert(bots).values(
                    id=n, username=f"demo{n}_bot", slug=f"bot{n}", token=f"{n}:tok", pixel_id=f"px{n}",
                    created_at=utcnow(),
                )
            )  # fmt: skip
    engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.cluster, pytest.mark.sentinel]),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path, redis_standalone: str, stub: StubServer) -> str:
    return request.param


@pytest.fixture
def settings(request: pytest.FixtureRequest, backend: str, tmp_path: Path, stub: StubServer) -> Settings:
    common = {
        "gateway_secrets": {"stubpay": GATEWAY_SECRET},
        "telegram_webhook_secret": TELEGRAM_SECRET,
        "outbound_url": f"http://{servers.HOST}:{stub.server_address[1]}",
        "outbound_timeout": 5.0,
    }
    if backend == "sqlite":
        url = request.getfixturevalue("redis_standalone")
        redis.Redis.from_url(url).flushall()
        database_url = f"sqlite:///{tmp_path}/grimbots.db"
        settings = Settings(database_url=database_url, redis_cache_url=url, redis_queue_url=url, **common)
        engine = create_engine(settings.database_url)
        migrate.upgrade(engine)
        engine.dispose()
    else:
        pg = request.getfixturevalue("postgres")
        cluster = request.getfixturevalue("redis_cluster")
        sentinel = request.getfixturevalue("redis_sentinel")
        _flush_cluster(cluster)
        redis.Redis(host=servers.HOST, port=sentinel["primary"]).flushall()
        settings = Settings(
            database_url=pg.url(pg.new_database()),
            redis_cache_cluster_nodes=tuple(cluster),
            redis_queue_sentinels=tuple(sentinel["sentinels"]),
            redis_queue_sentinel_service=sentinel["service"],
            **common,
        )
    seed_bots(settings)
    return settings


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build(settings)
    services_module.install(built)
    yield built
    built.close()
    services_module._current = None


@pytest.fixture
def client(services: Services):
    from grimbots.web import create_app

    app = create_app(services=services)
    app.test_client_class = TelegramClient
    return app.test_client()


def drain(services: Services, *queues: str) -> None:
    """Run every queued job in this process (an RQ SimpleWorker in burst mode)."""
    names = queues or QUEUE_NAMES
    worker = SimpleWorker(
        [services.queue(n) for n in names], connection=services.redis.queue, serializer=JOB_SERIALIZER
    )
    worker.work(burst=True, with_scheduler=False)


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``GRIMBOTS_*`` variables that reproduce ``settings`` in a subprocess."""
    env = dict(os.environ)
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, dict):
            value = ",".join(f"{k}:{v}" for k, v in value.items())
        elif isinstance(value, tuple):
            value = ",".join(f"{h}:{p}" for h, p in value)
        env[f"GRIMBOTS_{f.name.upper()}"] = str(value)
    env["GRIMBOTS_LOG_LEVEL"] = "WARNING"
    return env


def bin_path(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.fixture
def run_workers(settings: Settings) -> Callable[..., None]:
    """Run ``count`` real ``grimbots-worker <queue> --burst`` processes at once and wait for them."""

    def run(queue: str, count: int = 3) -> None:
        env = settings_env(settings)
        procs = [
            subprocess.Popen([bin_path("grimbots-worker"), queue, "--burst", "--no-scheduler"], env=env)
            for _ in range(count)
        ]
        for proc in procs:
            assert proc.wait(timeout=120) == 0

    return run
