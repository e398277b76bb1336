"""Operator commands: schema, seeding, audit, the SQLite -> PostgreSQL migration, multi-host DSNs."""

from __future__ import annotations

import json
import subprocess

import pytest
from sqlalchemy import create_engine, insert, select, text

from grimbots import migrate
from grimbots.settings import Settings
from grimbots.storage import bots, payments, utcnow, webhook_inbox

from .conftest import bin_path, seed_bots, settings_env
from .servers import HOST, free_port

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def grimbots_app(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [bin_path("grimbots-app"), *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_operator_commands_run_before_the_metrics_directory_exists(tmp_path):
    """A deploy migrates the schema before any service has created the metrics directory that the env
    file names (PROMETHEUS_MULTIPROC_DIR): the operator commands must not load the metrics."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/fresh.db")
    env = settings_env(settings) | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "not-yet")}
    for args in (["db", "upgrade"], ["seed-bots", "--count", "2"], ["audit", "--json"]):
        result = subprocess.run(
            [bin_path("grimbots-app"), *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (args, result.stderr[-2000:])


def test_db_upgrade_and_seed_from_the_installed_package(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path}/fresh.db")
    result = grimbots_app(settings, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "schema revision: 0001" in result.stdout
    assert "upgraded from empty" in result.stdout
    again = grimbots_app(settings, "db", "upgrade")
    assert "schema revision: 0001" in again.stdout
    assert "upgraded" not in again.stdout  # deploy tooling reports changed=0 from this
    assert "bots created: 5" in grimbots_app(settings, "seed-bots", "--count", "5").stdout
    assert "bots created: 0, already there: 5" in grimbots_app(settings, "seed-bots", "--count", "5").stdout


def _inbox_row(event_id: str, payment_id: str, result: str | None) -> dict:
    return {
        "gateway": "stubpay", "dedup_key": event_id, "payment_id": payment_id, "status": "paid",
        "payload": "{}", "received_at": utcnow(), "attempts": 1, "result": result,
        "processed_at": utcnow() if result else None,
    }  # fmt: skip


def _payment_row(payment_id: str) -> dict:
    return {
        "id": payment_id, "bot_id": 1, "telegram_user_id": 9, "amount_cents": 100, "gateway": "stubpay",
        "status": "paid", "created_at": utcnow(), "paid_at": utcnow(),
    }  # fmt: skip


@sqlite_only
def test_audit_reports_and_fails_on_duplicates(settings, services):
    result = grimbots_app(settings, "audit", "--json")
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout)["duplicates"] == 0

    with services.engine.begin() as conn:  # two notifications both "won" the same payment
        conn.execute(insert(payments).values(**_payment_row("p1")))
        conn.execute(insert(webhook_inbox).values(**_inbox_row("a", "p1", "paid")))
        conn.execute(insert(webhook_inbox).values(**_inbox_row("b", "p1", "paid")))
        conn.execute(insert(webhook_inbox).values(**_inbox_row("c", "p1", None)))
    result = grimbots_app(settings, "audit", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert report["duplicate_paid_transitions"] == 1 and report["unprocessed_webhooks"] == 1
    text_report = grimbots_app(settings, "audit").stdout
    assert "FAIL: duplicated effects found" in text_report


@pytest.mark.postgres
def test_migrate_sqlite_to_postgres_copies_and_verifies(tmp_path, postgres):
    source = Settings(database_url=f"sqlite:///{tmp_path}/phase1.db")
    engine = create_engine(source.database_url)
    migrate.upgrade(engine)
    seed_bots(source, count=30)
    with engine.begin() as conn:
        conn.execute(insert(payments).values(**_payment_row("p1")))
        for n in range(2500):  # more than two batches
            conn.execute(insert(webhook_inbox).values(**_inbox_row(f"e{n}", "p1", "paid" if n == 0 else "x")))
    target_url = postgres.url(postgres.new_database(migrated=False))
    target = Settings(database_url=target_url)

    for _ in range(2):  # a rerun is safe
        result = grimbots_app(target, "migrate-sqlite-to-postgres", "--source", source.database_url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "webhook_inbox   source=    2500 target=    2500 ok" in result.stdout

    pg = create_engine(target_url)
    with pg.begin() as conn:  # sequences were moved past the copied ids
        new_id = conn.execute(
            insert(webhook_inbox).values(**_inbox_row("new", "p1", None)).returning(webhook_inbox.c.id)
        ).scalar_one()
        assert new_id == 2501
        conn.execute(text("UPDATE bots SET username = 'tampered' WHERE id = 7"))
    result = grimbots_app(target, "migrate-sqlite-to-postgres", "--source", source.database_url)
    assert result.returncode == 1
    assert "MISMATCH" in result.stdout
    pg.dispose()


@pytest.mark.postgres
def test_multi_host_dsn_skips_a_dead_host(postgres):
    dbname = postgres.new_database()
    url = (
        f"postgresql+psycopg2://postgres@/{dbname}?host={HOST}:{free_port()}&host={HOST}:{postgres.port}"
        "&target_session_attrs=read-write"
    )
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(bots.c.id)).all() == []
        assert conn.execute(text("SHOW transaction_read_only")).scalar() == "off"
    engine.dispose()


@sqlite_only
def test_queues_reports_sizes_and_waits_for_empty(settings, services, run_workers):
    assert grimbots_app(settings, "queues").stdout.strip() == "tasks=0 gateway=0 webhook=0"
    services.queue("tasks").enqueue("grimbots.tasks.noop_for_tests_that_does_not_exist")
    result = grimbots_app(settings, "queues", "--wait-empty", "1")
    assert result.returncode == 1 and "tasks=1" in result.stdout  # nobody works the queue: not empty in time
    run_workers("tasks", count=1)  # the job fails (no such function) and leaves the queue
    result = grimbots_app(settings, "queues", "--wait-empty", "5")
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().splitlines()[-1] == "tasks=0 gateway=0 webhook=0"
