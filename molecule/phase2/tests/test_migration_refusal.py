"""The move of the phase-1 data refuses to switch when its verification fails, and loses nothing.

After the documented rollback (phase1.yml again with grimbots_phase_rollback: the app back on its SQLite
file, which phase 2 left in place), one row of the PostgreSQL copy is made to differ from its source, as
a stray write into the new database would. The migration step (the first task of phase2.yml's app play)
copies with ON CONFLICT DO NOTHING, so the row stays as it is, and the row-by-row digest catches it: the
run fails, phase 1 runs again on SQLite with its settings untouched. With the row put back, phase2.yml
runs through and the app is on the cluster again. The copy is compared with the SQLite file before the
progression tests write anything new through the app (this file runs before test_progression.py, in name
order)."""

import json
import re
import sys
from pathlib import Path

from patroni_cluster import psql, wait_for_healthy_cluster

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from playbook_runs import ROOT, run_playbook

testinfra_hosts = ["ansible://app1"]

SCENARIO = Path(__file__).resolve().parents[1]
TABLES = ["bots", "payments", "sent_messages", "webhook_inbox", "pixel_events"]
SQLITE = "/var/lib/grimbots/grimbots.db"
ENV_FILE = "/etc/grimbots/grimbots.env"


def sqlite_counts(host) -> dict:
    return {t: int(host.check_output(f"sqlite3 {SQLITE} 'select count(*) from {t}'")) for t in TABLES}


def health(host) -> tuple[str, dict]:
    out = host.run("curl -s -o /tmp/health.json -w '%{http_code}' http://127.0.0.1:8000/health")
    return out.stdout, json.loads(host.check_output("cat /tmp/health.json") or "{}")


def test_a_copy_that_differs_is_refused_and_phase1_runs_on(host, pg):
    # The rollback of docs/phase2.md: phase 1 again on the phase-1 server, said to be deliberate (without
    # it the phase guard refuses: the deployment is at phase 2).
    rollback = run_playbook(ROOT / "playbooks/phase1.yml", "-e", "grimbots_phase_rollback=true")
    assert rollback.returncode == 0, rollback.stdout[-3000:]
    assert "GRIMBOTS_DATABASE_URL=sqlite" in host.file(ENV_FILE).content_string
    settings_before = host.check_output(f"sha256sum {ENV_FILE}")
    rows_before = sqlite_counts(host)

    leader = wait_for_healthy_cluster(pg)
    changed = psql(
        pg[leader],
        "update payments set amount_cents = amount_cents + 1 "
        "where id = (select min(id) from payments) returning id",
        dsn="dbname=grimbots",
    )
    assert changed.rc == 0 and changed.stdout.strip(), changed.stderr
    payment = changed.stdout.split()[0]
    try:
        refused = run_playbook(SCENARIO / "migration_step.yml")
        output = " ".join((refused.stdout + refused.stderr).split())
        assert refused.returncode != 0, output[-3000:]
        assert re.search(r"payments source= \d+ target= \d+ MISMATCH", output), output[-3000:]
        assert "Phase 1 runs again on SQLite" in output, output[-3000:]
        assert host.check_output(f"sha256sum {ENV_FILE}") == settings_before, "settings changed"
        assert host.service("grimbots").is_running and host.service("grimbots-workers.target").is_running
        status, body = health(host)
        assert status == "200" and body["checks"]["database"]["status"] == "ok", body
        assert sqlite_counts(host) == rows_before, "rows lost on SQLite"
    finally:
        restored = psql(
            pg[wait_for_healthy_cluster(pg)],
            f"update payments set amount_cents = amount_cents - 1 where id = '{payment}'",
            dsn="dbname=grimbots",
        )
        assert restored.rc == 0, restored.stderr

    # The cause removed, phase 2 runs through: the copy verifies, the app is on the cluster again.
    moved = run_playbook(ROOT / "playbooks/phase2.yml", timeout=900)
    output = " ".join((moved.stdout + moved.stderr).split())
    assert moved.returncode == 0, output[-3000:]
    verdicts = re.findall(r"(\w+) source= (\d+) target= (\d+) (ok|MISMATCH)", output)
    assert sorted(v[0] for v in verdicts) == sorted(TABLES) and all(v[3] == "ok" for v in verdicts), verdicts
    assert {v[0]: int(v[1]) for v in verdicts} == rows_before, (verdicts, rows_before)
    assert "GRIMBOTS_DATABASE_URL=postgresql+psycopg2://" in host.file(ENV_FILE).content_string
    status, body = health(host)
    assert status == "200" and body["status"] == "healthy", body
