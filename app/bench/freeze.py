"""Freeze drill on this machine: the app (default timeouts) against a PostgreSQL and a Redis that are frozen
(every process SIGSTOPped, as on a paused host) for a while, with a PIX creation every 0.25 s.

    .venv/bin/python app/bench/freeze.py [--freeze 20]

For each server: the answers while it was frozen (status -> count), the longest request, and how long
after the thaw the first request succeeded. Loopback only; bounded (each request has a 60 s cap).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy import create_engine, text
from tests.conftest import GATEWAY_SECRET, TELEGRAM_SECRET, seed_bots
from tests.servers import HOST, ServerGroup, frozen, start_postgres, start_redis

from grimbots import migrate
from grimbots.settings import Settings
from grimbots.web import create_app

INTERVAL = 0.25


def drill(client, pid: int, seconds: float, label: str) -> dict:
    results: list[tuple[float, int, float]] = []  # (sent at, status, duration)
    lock = threading.Lock()
    counter = iter(range(10**9))
    start = time.monotonic()

    def one() -> None:
        sent = time.monotonic() - start
        key = f"{label}-{next(counter)}"
        body = {"bot_id": 1, "telegram_user_id": 5, "amount_cents": 100, "idempotency_key": key}
        began = time.monotonic()
        status = client().post("/api/pix", json=body).status_code
        with lock:
            results.append((sent, status, time.monotonic() - began))

    threads = []

    def fire(until: float) -> None:
        while time.monotonic() - start < until:
            thread = threading.Thread(target=one, daemon=True)
            thread.start()
            threads.append(thread)
            time.sleep(INTERVAL)

    fire(2.0)
    with frozen(pid):
        frozen_at = time.monotonic() - start
        fire(frozen_at + seconds)
        thawed_at = time.monotonic() - start
    fire(thawed_at + 15.0)
    for thread in threads:
        thread.join(60)
    during = [r for r in results if frozen_at <= r[0] < thawed_at]
    after_ok = [r[0] + r[2] for r in results if r[0] >= thawed_at and r[1] in (200, 201)]
    return {
        "while frozen": dict(Counter(status for _, status, _ in during)),
        "longest request (s)": round(max(d for _, _, d in results), 2),
        "first success after the thaw (s)": round(min(after_ok) - thawed_at, 2) if after_ok else None,
        "hung (> 60 s)": sum(thread.is_alive() for thread in threads),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freeze", type=float, default=20.0, help="seconds each server stays frozen")
    args = parser.parse_args()
    group = ServerGroup()
    try:
        pg_port = start_postgres(group)
        pg_pid = group.procs[-1].pid
        redis_port = start_redis(group, "redis")
        redis_pid = group.procs[-1].pid
        admin = create_engine(
            f"postgresql+psycopg2://postgres@{HOST}:{pg_port}/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE drill"))
        admin.dispose()
        url = f"postgresql+psycopg2://postgres@{HOST}:{pg_port}/drill"
        migrate.upgrade(create_engine(url))
        redis_url = f"redis://{HOST}:{redis_port}/0"
        settings = Settings(
            database_url=url, redis_cache_url=redis_url, redis_queue_url=redis_url,
            gateway_secrets={"stubpay": GATEWAY_SECRET}, telegram_webhook_secret=TELEGRAM_SECRET,
        )  # fmt: skip
        seed_bots(settings)
        app = create_app(settings)
        local = threading.local()

        def client():
            if not hasattr(local, "client"):
                local.client = app.test_client()
            return local.client

        print(f"defaults: db_connect_timeout={settings.db_connect_timeout} db_query_timeout={settings.db_query_timeout}"
              f" redis_queue_socket_timeout={settings.redis_queue_socket_timeout}; frozen {args.freeze:g} s each")  # fmt: skip
        for label, pid in (("postgresql", pg_pid), ("redis", redis_pid)):
            print(label, drill(client, pid, args.freeze, label), flush=True)
    finally:
        group.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
