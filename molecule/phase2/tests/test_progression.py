"""Phase 2 on top of phase 1: every row written on SQLite is in PostgreSQL, no effect is duplicated,
the app serves from the cluster and its workers process new work there."""

import hashlib
import hmac
import json
import time
import uuid

from scenario_facts import app_db_counts

testinfra_hosts = ["ansible://app1"]

TABLES = ["bots", "payments", "sent_messages", "webhook_inbox", "pixel_events"]
SQLITE = "/var/lib/grimbots/grimbots.db"


def test_the_app_now_uses_the_cluster(host):
    settings = host.file("/etc/grimbots/grimbots.env").content_string
    assert "GRIMBOTS_DATABASE_URL=postgresql+psycopg2://" in settings
    assert "target_session_attrs=read-write" in settings


def test_every_phase1_row_is_in_postgresql(host):
    sqlite = {t: int(host.check_output(f"sqlite3 {SQLITE} 'select count(*) from {t}'")) for t in TABLES}
    assert sqlite["sent_messages"] >= 1000 and sqlite["payments"] >= 200, sqlite  # a few thousand rows
    postgres = app_db_counts(host)
    for table in TABLES:
        assert postgres[table] >= sqlite[table], (table, sqlite, postgres)


def test_audit_finds_no_duplicate_and_nothing_unprocessed(host):
    out = host.run("grimbots-app audit --json --fail-on-stale")
    assert out.rc == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["duplicates"] == 0 and report["unprocessed_webhooks"] == 0, report
    assert report["paid_transitions"] >= 200, report


def test_the_app_serves_and_processes_from_the_cluster(host, lab_vars):
    health = json.loads(host.check_output("curl -s http://127.0.0.1:8000/health"))
    assert health["status"] == "healthy" and health["checks"]["database"]["status"] == "ok", health
    before = app_db_counts(host)["sent_messages"]
    chat = uuid.uuid4().int % 10**9
    update = {"update_id": chat, "message": {"message_id": 1, "chat": {"id": chat}, "text": "/start"}}
    secret = lab_vars["vault_app_telegram_webhook_secret"]
    token = hmac.new(secret.encode(), b"telegram-webhook:1", hashlib.sha256).hexdigest()
    host.check_output(
        "curl -sf -X POST -H 'Content-Type: application/json' -H %s --data-binary %s "
        "http://127.0.0.1:8000/webhook/telegram/1",
        f"X-Telegram-Bot-Api-Secret-Token: {token}",
        json.dumps(update),
    )
    deadline = time.monotonic() + 30
    while app_db_counts(host)["sent_messages"] < before + 2:
        assert time.monotonic() < deadline, "the /start funnel did not reach PostgreSQL within 30 s"
        time.sleep(1)
