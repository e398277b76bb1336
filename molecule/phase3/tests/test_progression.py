"""Phase 1 -> 2 -> 3 on one lab: the rows written at each step are all in PostgreSQL, nothing is
duplicated, and after phase 3 the app serves through HAProxy with its cache on Redis Cluster and its
queues on the Sentinel-managed Redis."""

import json
import shlex
import subprocess

from conftest import APPS, LB, SCENARIO
from scenario_facts import app_db_counts

TRAFFIC = SCENARIO.parent / "phase2" / "files" / "phase1_traffic.py"


def audit(host) -> dict:
    out = host.run("grimbots-app audit --json --fail-on-stale")
    assert out.rc == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def test_every_app_server_uses_the_cluster_and_sentinel(hosts):
    for name in APPS:
        settings = hosts[name].file("/etc/grimbots/grimbots.env").content_string
        assert "GRIMBOTS_REDIS_CACHE_CLUSTER_NODES=" in settings, name
        assert "GRIMBOTS_REDIS_QUEUE_SENTINELS=" in settings, name
        assert "GRIMBOTS_DATABASE_URL=postgresql+psycopg2://" in settings, name
        health = json.loads(hosts[name].check_output("curl -s -m 5 http://127.0.0.1:8000/health"))
        assert health["status"] == "healthy", (name, health)


def test_the_rows_of_phase_1_and_phase_2_are_all_there(hosts):
    sqlite = int(
        hosts[APPS[0]].check_output("sqlite3 /var/lib/grimbots/grimbots.db 'select count(*) from payments'")
    )
    assert sqlite >= 200, sqlite
    counts = app_db_counts(hosts[APPS[0]])
    # Phase 1 wrote its payments on SQLite (moved by phase 2); phase 2 wrote as many again on PostgreSQL.
    assert counts["payments"] >= sqlite + 200, counts
    report = audit(hosts[APPS[0]])
    assert report["duplicates"] == 0 and report["unprocessed_webhooks"] == 0, report
    assert report["paid_transitions"] >= 400, report


def test_data_written_through_haproxy_in_phase_3_is_processed_once(hosts, lab_vars):
    before = app_db_counts(hosts[APPS[0]])
    lb = hosts[LB]
    subprocess.run(["podman", "cp", str(TRAFFIC), f"{LB}:/root/traffic.py"], check=True)
    secret = shlex.quote(lab_vars["vault_app_gateway_secrets"]["stubpay"])
    telegram = shlex.quote(lab_vars["vault_app_telegram_webhook_secret"])
    out = lb.run(
        f"python3 /root/traffic.py --secret {secret} --telegram-secret {telegram} --offset 200000 "
        "--updates 300 --payments 100 "
        "--base https://127.0.0.1 --insecure"
    )
    assert out.rc == 0, out.stdout + out.stderr

    drained = hosts[APPS[1]].run("grimbots-app queues --wait-empty 180")
    assert drained.rc == 0, drained.stdout + drained.stderr
    assert app_db_counts(hosts[APPS[2]])["payments"] >= before["payments"] + 100
    report = audit(hosts[APPS[2]])
    assert report["duplicates"] == 0 and report["unprocessed_webhooks"] == 0, report
    assert report["paid_transitions"] >= 500, report
