"""A frozen PostgreSQL or queue Redis (every process stopped, as on a paused host) fails requests within
the configured timeouts, with a 503, instead of hanging them; the app serves again once it is back.

The servers here are the module's own, so freezing them disturbs no other test.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import RedisError
from sqlalchemy import create_engine, select, text

from grimbots import migrate
from grimbots import services as services_module
from grimbots.redis_connections import RedisConnections
from grimbots.services import Services, build
from grimbots.settings import Settings
from grimbots.storage import make_engine, payments
from grimbots.web import create_app

from . import servers
from .conftest import GATEWAY_SECRET, TELEGRAM_SECRET, TelegramClient, drain, seed_bots
from .test_hot_paths import start_update

QUERY_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
QUEUE_TIMEOUT = 2.0
# Longest a request may take while a server is frozen: a pool ping, a new connection, slack.
BOUND = QUERY_TIMEOUT + CONNECT_TIMEOUT + 3.0
FREEZE_CAP = 30.0  # a request still running after this is hung: the test fails, servers are thawed


@pytest.fixture(scope="module")
def own_servers() -> Iterator[dict]:
    group = servers.ServerGroup()
    try:
        pg_port = servers.start_postgres(group)
        pg_pid = group.procs[-1].pid
        redis_port = servers.start_redis(group, "frozen-redis")
        redis_pid = group.procs[-1].pid
        base = f"postgresql+psycopg2://postgres@{servers.HOST}:{pg_port}"
        admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE frozen_template"))
        engine = create_engine(f"{base}/frozen_template")
        migrate.upgrade(engine)
        engine.dispose()
        names = itertools.count()

        def new_database() -> str:
            name = f"frozen{next(names)}"
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name} TEMPLATE frozen_template"))
            return f"{base}/{name}"

        yield {
            "pg_port": pg_port, "pg_pid": pg_pid, "redis_port": redis_port, "redis_pid": redis_pid,
            "url": new_database(), "new_database": new_database,
        }  # fmt: skip
        admin.dispose()
    finally:
        group.stop()


def own_settings(own_servers: dict, stub, **extra) -> Settings:
    redis_url = f"redis://{servers.HOST}:{own_servers['redis_port']}/0"
    values = {
        "database_url": own_servers["url"],
        "redis_cache_url": redis_url,
        "redis_queue_url": redis_url,
        "gateway_secrets": {"stubpay": GATEWAY_SECRET},
        "telegram_webhook_secret": TELEGRAM_SECRET,
        "outbound_url": f"http://{servers.HOST}:{stub.server_address[1]}",
        "db_query_timeout": QUERY_TIMEOUT,
        "db_connect_timeout": CONNECT_TIMEOUT,
        "redis_queue_socket_timeout": QUEUE_TIMEOUT,
        **extra,
    }
    return Settings(**values)


@pytest.fixture
def own(own_servers, stub) -> Iterator[tuple[Services, TelegramClient]]:
    settings = own_settings(own_servers, stub, database_url=own_servers["new_database"]())
    seed_bots(settings)
    built = build(settings, interactive=True)  # as the web app builds them
    built.redis.queue.flushall()
    services_module.install(built)  # what RQ jobs run by drain() use
    app = create_app(services=built)
    app.test_client_class = TelegramClient
    yield built, app.test_client()
    built.close()
    services_module._current = None


def timed(call) -> tuple[object, float]:
    """``call()`` in a thread, bounded by FREEZE_CAP: (its result, seconds taken)."""
    box: dict = {}

    def run() -> None:
        box["result"] = call()

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(FREEZE_CAP)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"the request hung for {FREEZE_CAP} s"
    return box["result"], elapsed


def pix(client, key: str, user: int = 5):
    body = {"bot_id": 1, "telegram_user_id": user, "amount_cents": 1990, "idempotency_key": key}
    return client.post("/api/pix", json=body)


def test_frozen_database_fails_requests_within_the_timeout(own, own_servers):
    services, client = own
    assert pix(client, "warm").status_code == 201  # a pooled connection to the server that freezes
    with servers.frozen(own_servers["pg_pid"]):
        response, elapsed = timed(lambda: pix(client, "during"))
        assert response.status_code == 503, response.get_data()
        assert response.get_json()["error"] == "service_unavailable"
        assert elapsed < BOUND, f"{elapsed:.1f} s"
        health, elapsed = timed(lambda: client.get("/health"))
        assert health.status_code == 503 and elapsed < BOUND
        detail = health.get_data(as_text=True)
        # The error's type only: no address, port or user of the database in the answer.
        assert health.get_json()["checks"]["database"]["error"] == "OperationalError"
        assert str(own_servers["pg_port"]) not in detail and "postgres" not in detail.lower()
        # The load balancer's check asks nothing of the database.
        live, elapsed = timed(lambda: client.get("/livez"))
        assert live.status_code == 200 and elapsed < 1.0
    # Back: the same request goes through (the pool threw the dead connections away) once the
    # fail-fast window after the last failed connection has passed.
    time.sleep(services.settings.db_retry_after)
    assert pix(client, "during").status_code in (200, 201)
    with services.engine.connect() as conn:
        assert conn.execute(select(payments.c.id)).scalars().all().__len__() == 2


def test_frozen_queue_redis_gets_503_and_the_retry_queues_the_charge_once(own, own_servers, stub):
    services, client = own
    assert pix(client, "warm").status_code == 201
    drain(services, "gateway")
    with servers.frozen(own_servers["redis_pid"]):
        response, elapsed = timed(lambda: pix(client, "order-1", user=6))
        assert response.status_code == 503 and elapsed < BOUND, (response.get_data(), elapsed)
        assert response.get_json()["error"] == "queue_unavailable"
        payment_id = response.get_json()["payment_id"]
        update, elapsed = timed(lambda: client.post("/webhook/telegram/1", json=start_update(9, 6)))
        assert update.status_code == 503 and elapsed < BOUND + QUEUE_TIMEOUT
    # The payment was stored; the same request again queues its charge, a third time does not.
    assert pix(client, "order-1", user=6).get_json() == {"payment_id": payment_id, "status": "pending"}
    assert pix(client, "order-1", user=6).status_code == 200
    assert services.queue("gateway").count == 1
    calls_before = stub.state.stats()["calls"].get("gateway", 0)
    drain(services, "gateway")
    assert stub.state.stats()["calls"].get("gateway", 0) == calls_before + 1
    with services.engine.connect() as conn:
        assert conn.execute(select(payments.c.charge_ref).where(payments.c.id == payment_id)).scalar_one()


def test_a_frozen_first_host_costs_the_connect_timeout_not_a_hang(own_servers, stub):
    """The multi-host DSN's first member frozen (a former leader): new connections go to the next."""
    listener = socket.socket()
    listener.bind((servers.HOST, 0))
    listener.listen(64)  # accepts (in the kernel), never answers: a frozen PostgreSQL
    frozen_port = listener.getsockname()[1]
    try:
        url = (
            f"postgresql+psycopg2://postgres@/frozen0?host={servers.HOST}:{frozen_port}"
            f"&host={servers.HOST}:{own_servers['pg_port']}&target_session_attrs=read-write"
        )
        engine = make_engine(own_settings(own_servers, stub, database_url=url))
        try:

            def query() -> int:
                with engine.connect() as conn:
                    return conn.execute(text("SELECT 1")).scalar_one()

            result, elapsed = timed(query)
            assert result == 1
            assert CONNECT_TIMEOUT * 0.9 < elapsed < CONNECT_TIMEOUT + 2.0, f"{elapsed:.1f} s"
        finally:
            engine.dispose()
    finally:
        listener.close()


def test_no_host_accepting_names_each_host(own_servers, stub):
    closed = servers.free_port()
    url = f"postgresql+psycopg2://postgres@/frozen0?host={servers.HOST}:{closed}&host={servers.HOST}:{closed}"
    engine = make_engine(own_settings(own_servers, stub, database_url=url))
    try:
        with pytest.raises(
            Exception, match=f"no database host accepted the connection: {servers.HOST}:{closed}"
        ):
            engine.connect()
    finally:
        engine.dispose()


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port whose kernel accepts connections and nothing ever answers: a frozen PostgreSQL."""
    listener = socket.socket()
    listener.bind((servers.HOST, 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()


def test_a_host_that_timed_out_is_tried_after_the_others(own_servers, stub, silent_listener):
    """A frozen former leader first in the DSN costs the connect timeout once, not on every new
    connection: after a failover every new connection would otherwise wait for it first."""
    url = (
        f"postgresql+psycopg2://postgres@/frozen0?host={servers.HOST}:{silent_listener}"
        f"&host={servers.HOST}:{own_servers['pg_port']}&target_session_attrs=read-write"
    )
    engine = make_engine(own_settings(own_servers, stub, database_url=url))
    try:
        timings = []
        for _ in range(3):
            _, elapsed = timed(lambda: engine.connect().close())
            timings.append(elapsed)
            engine.dispose()  # the next checkout makes a new connection
        assert timings[0] > CONNECT_TIMEOUT * 0.9, timings
        assert max(timings[1:]) < CONNECT_TIMEOUT * 0.5, timings
    finally:
        engine.dispose()


def test_while_no_host_accepts_new_connections_fail_at_once(own_servers, stub, silent_listener):
    """After an attempt found no host, new connections fail at once for db_retry_after seconds (a request
    answers 503 instead of holding a server thread), then the next one tries again."""
    url = f"postgresql+psycopg2://postgres@/frozen0?host={servers.HOST}:{silent_listener}"
    retry_after = 2.0
    engine = make_engine(own_settings(own_servers, stub, database_url=url, db_retry_after=retry_after))

    def attempt() -> str:
        try:
            engine.connect().close()
        except Exception as exc:
            return str(exc)
        return "connected"

    try:
        first, elapsed = timed(attempt)
        assert "no database host accepted the connection" in first and elapsed > CONNECT_TIMEOUT * 0.9
        second, elapsed = timed(attempt)
        assert "next attempt in" in second and elapsed < 0.2, (second, elapsed)
        time.sleep(retry_after)
        third, elapsed = timed(attempt)
        assert "next attempt in" not in third and elapsed > CONNECT_TIMEOUT * 0.9, (third, elapsed)
    finally:
        engine.dispose()


def test_while_the_queue_redis_is_down_the_web_app_fails_fast(own_servers, stub):
    """Once a queue command timed out, the web app's queue commands fail at once for
    redis_queue_retry_after seconds (pooled connections to a frozen server would each wait the socket
    timeout, holding a server thread), then the next one tries again. A worker's client waits."""
    retry_after = 3.0
    settings = own_settings(own_servers, stub, redis_queue_retry_after=retry_after)
    web, worker = build(settings, interactive=True), build(settings)

    def ping(client) -> str:
        try:
            client.ping()
        except RedisError as exc:
            return str(exc)
        return "PONG"

    try:
        # Several pooled connections, as a busy process has.
        pool = web.redis.queue.connection_pool
        held = [pool.get_connection() for _ in range(3)]
        for connection in held:
            pool.release(connection)
        assert ping(web.redis.queue) == "PONG"
        with servers.frozen(own_servers["redis_pid"]):
            first, elapsed = timed(lambda: ping(web.redis.queue))
            assert first != "PONG" and elapsed > QUEUE_TIMEOUT * 0.9, (first, elapsed)
            for _ in range(3):
                answer, elapsed = timed(lambda: ping(web.redis.queue))
                assert "next attempt in" in answer and elapsed < 0.2, (answer, elapsed)
            _, elapsed = timed(lambda: ping(worker.redis.queue))
            assert elapsed > QUEUE_TIMEOUT * 0.9, elapsed  # the worker's client is not affected
        time.sleep(retry_after)
        assert ping(web.redis.queue) == "PONG"
    finally:
        web.close()
        worker.close()


def test_a_connection_the_queue_redis_closed_fails_only_its_own_command(own_servers, stub):
    """A server that closes connections (a restart, a Sentinel reconfiguration) is up: the next command
    reconnects at once instead of failing fast."""
    settings = own_settings(own_servers, stub, redis_queue_retry_after=30.0)
    web = build(settings, interactive=True)
    admin = redis.Redis(host=servers.HOST, port=own_servers["redis_port"])
    try:
        assert web.redis.queue.ping()
        admin.client_kill_filter(_type="normal", skipme=True)
        with contextlib.suppress(RedisError):
            web.redis.queue.ping()  # the closed connection: may fail
        assert web.redis.queue.ping()
    finally:
        admin.close()
        web.close()


def test_a_pooled_connection_to_a_frozen_server_is_dropped_within_the_connect_timeout(own_servers, stub):
    """The pool's pre-ping is bounded by db_connect_timeout, not the query timeout: a request that
    finds the server frozen answers within ping + reconnect, well before a query would time out."""
    settings = own_settings(
        own_servers, stub, database_url=own_servers["new_database"](), db_query_timeout=4.0
    )
    seed_bots(settings)
    built = build(settings, interactive=True)
    client = create_app(services=built).test_client()
    try:
        with built.engine.connect() as conn:  # a pooled connection to the server that freezes
            conn.execute(text("SELECT 1"))
        with servers.frozen(own_servers["pg_pid"]):
            response, elapsed = timed(lambda: client.get("/health"))
        assert response.status_code == 503
        assert elapsed < CONNECT_TIMEOUT * 2 + 1.0 < settings.db_query_timeout, f"{elapsed:.1f} s"
    finally:
        built.close()


def test_a_sentinel_that_does_not_answer_is_skipped_within_its_timeout(redis_sentinel, silent_listener):
    """The first Sentinel of the list frozen (a paused host): finding the queue primary asks the next one
    after the Sentinel timeout (2 s), instead of retrying the frozen one ten times."""
    settings = Settings(
        redis_queue_sentinels=((servers.HOST, silent_listener), *redis_sentinel["sentinels"]),
        redis_queue_sentinel_service=redis_sentinel["service"],
    )
    for interactive in (True, False):
        connections = RedisConnections(settings, interactive=interactive)
        try:
            answer, elapsed = timed(connections.queue.ping)
            assert answer is True and elapsed < 4.0, (interactive, elapsed)
        finally:
            connections.close()
