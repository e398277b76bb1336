"""Failover drills, timed from the failure to the first write that succeeds through the multi-host DSN
(libpq tries pg1, pg2, pg3 and keeps the one that accepts writes: target_session_attrs=read-write), as
the app connects. The client is a replica, which the drill leaves alone. Figures are shown in the
summary at the end of the run) and written to docs/phase2.md by hand."""

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIGURES
from patroni_cluster import PG_HOSTS, REST_PORT, leader_and_replicas, wait_for_healthy_cluster
from scenario_facts import address

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from playbook_runs import ROOT, run_playbook

testinfra_hosts = ["ansible://pg1"]

DSN = (
    "host=" + ",".join(PG_HOSTS) + " port=5432 dbname=postgres user=postgres "
    "target_session_attrs=read-write connect_timeout=2"
)


def start_writer(client, password: str) -> None:
    """Start, in the background on the client, a loop that tries one write every 0.2 s for at most
    180 s and records the time of the first success."""
    write = "create table if not exists drill (t timestamptz); insert into drill select now()"
    loop = (
        f"end=$(($(date +%s) + 180)); "
        f"until PGPASSWORD={shlex.quote(password)} psql -X -q {shlex.quote(DSN)} -c {shlex.quote(write)} "
        ">/dev/null 2>&1; do [ $(date +%s) -ge $end ] && exit 1; sleep 0.2; done; "
        "date +%s.%N > /tmp/first-write"
    )
    client.run("rm -f /tmp/first-write")
    client.run(f"nohup sh -c {shlex.quote(loop)} >/dev/null 2>&1 &")


def drill_rows(client, password: str) -> int:
    """Rows of the drill table on the read-write primary (0 before the first drill)."""
    sql = "select case when to_regclass('drill') is null then 0 else (select count(*) from drill) end"
    return int(
        client.check_output(
            f"PGPASSWORD={shlex.quote(password)} psql -X -A -t {shlex.quote(DSN)} -c {shlex.quote(sql)}"
        )
    )


def first_write_at(client, timeout: float = 190) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        out = client.run("cat /tmp/first-write")
        if out.rc == 0 and out.stdout.strip():
            return float(out.stdout.strip())
        time.sleep(0.5)
    raise AssertionError("no write succeeded through the multi-host DSN")


def test_kill_9_of_the_leaders_patroni_and_postgres(pg, lab_vars):
    """kill -9 both processes on the leader. systemd starts Patroni again within seconds; it still
    holds the leader key (ttl not expired), so it restarts PostgreSQL and stays leader: no election
    is needed, and writes come back after crash recovery."""
    leader = wait_for_healthy_cluster(pg)
    client = next(h for name, h in pg.items() if name != leader)
    victim = pg[leader]
    patroni_pid = victim.check_output("systemctl show -p MainPID --value patroni")
    postmaster_pid = victim.check_output("head -n 1 /var/lib/postgresql/*/patroni/postmaster.pid")
    killed_at = float(victim.check_output(f"date +%s.%N; kill -9 {patroni_pid} {postmaster_pid}").split()[0])
    start_writer(client, lab_vars["vault_postgres_superuser_password"])
    elapsed = first_write_at(client) - killed_at
    new_leader = wait_for_healthy_cluster(pg)
    FIGURES.append(f"kill -9 on {leader}: first write after {elapsed:.1f} s, leader then {new_leader}")
    assert elapsed < 60


def freeze_the_leader(pg, lab_vars, label: str) -> float:
    """The leader's whole host stops answering (podman pause: Patroni, PostgreSQL and its etcd member
    frozen). Its leader key expires after ttl, a replica is promoted, the DSN finds it; once the host
    comes back, the old leader rejoins as a replica and the write acknowledged meanwhile is kept.
    Returns the seconds to the first write."""
    leader = wait_for_healthy_cluster(pg)
    client = next(h for name, h in pg.items() if name != leader)
    password = lab_vars["vault_postgres_superuser_password"]
    rows_before = drill_rows(client, password)
    subprocess.run(["podman", "pause", leader], check=True, capture_output=True)
    paused_at = time.time()
    try:
        start_writer(client, password)
        elapsed = first_write_at(client) - paused_at
        new_leader, _ = leader_and_replicas({n: h for n, h in pg.items() if n != leader})
    finally:
        subprocess.run(["podman", "unpause", leader], check=True, capture_output=True)
    FIGURES.append(
        f"{label}: {leader} frozen (paused), {new_leader} promoted, first write after {elapsed:.1f} s"
    )
    assert new_leader not in (None, leader)
    assert wait_for_healthy_cluster(pg, timeout=240) == new_leader
    # The write the new leader acknowledged is still there once the old leader is back.
    assert drill_rows(client, password) >= rows_before + 1
    return elapsed


def test_leader_host_frozen_a_replica_takes_over(pg, lab_vars):
    assert freeze_the_leader(pg, lab_vars, "preset normal") < 90


def set_preset(pg, preset: str) -> dict:
    """The preset as an operator switches it: phase2.yml with the preset, Patroni's tasks only (the role
    PATCHes the dynamic configuration on the leader). Returns the configuration then in force."""
    preset_var = f"patroni_recovery_preset={preset}"
    result = run_playbook(ROOT / "playbooks/phase2.yml", "--tags", "patroni_configure", "-e", preset_var)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    leader = wait_for_healthy_cluster(pg)
    return json.loads(pg[leader].check_output(f"curl -s http://{address(pg[leader])}:{REST_PORT}/config"))


@pytest.fixture(scope="module")
def normal_preset_back(pg):
    """Whatever the drills below leave, the cluster ends on the preset of the inventory (normal)."""
    yield
    config = set_preset(pg, "normal")
    assert (config["ttl"], config["loop_wait"], config["retry_timeout"]) == (30, 10, 10), config


# The other presets, each drilled once (fast about 20-25 s, safe about 60-70 s by the table in
# docs/phase2.md): about 4 minutes of CI with the playbook runs that switch the preset and back.
@pytest.mark.parametrize(
    ("preset", "timings", "bound"),
    [("fast", (20, 5, 5), 45), ("safe", (60, 10, 25), 120)],
)
def test_leader_host_frozen_under_each_preset(pg, lab_vars, normal_preset_back, preset, timings, bound):
    config = set_preset(pg, preset)
    assert (config["ttl"], config["loop_wait"], config["retry_timeout"]) == timings, config
    assert freeze_the_leader(pg, lab_vars, f"preset {preset}") < bound
