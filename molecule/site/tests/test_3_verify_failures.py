"""What an operator sees when parts break, and the repair: with Patroni stopped on a PostgreSQL replica
and a Redis Cluster primary stopped at the same time, one verify.yml run fails, names both in its
message and in the report, and still reports the rest as healthy; redis_rebalance.yml refuses to
move shards while an instance is down. Once both are started again (the stopped primary comes back as
a replica: its shard failed over meanwhile), redis_rebalance.yml gives the shard back to it, a second
run changes nothing, and the Patroni replica streams from the same leader, so the deployment is whole
for what runs next."""

import json
import time

import pytest
from conftest import PGS, REDIS
from patroni_cluster import wait_for_healthy_cluster
from playbook_runs import ROOT, recap, run_playbook, run_verify, verify_rows
from scenario_facts import redis_cli, secret_values

CLUSTER_PORT = 7000  # the first cluster instance of a host: a primary in the role's layout
INSTANCE = f"redis-server@cluster-{CLUSTER_PORT}.service"
REBALANCE = ROOT / "playbooks/redis_rebalance.yml"


def wait_until(what: str, check, timeout: float = 120, interval: float = 1):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s")


def role(host, password: str) -> str:
    out = redis_cli(host, "-p", str(CLUSTER_PORT), "role", password=password)
    return out.splitlines()[0] if out else ""


def cluster_ok(hosts, password: str) -> bool:
    """Every host's first instance sees the cluster in state ok and is a primary (the role's layout)."""
    for name in REDIS:
        info = redis_cli(hosts[name], "-p", str(CLUSTER_PORT), "cluster", "info", password=password)
        if "cluster_state:ok" not in info or role(hosts[name], password) != "master":
            return False
    return True


@pytest.fixture(scope="module")
def broken(hosts, lab_vars):
    """Patroni stopped on a replica and a cluster primary stopped, for the tests of this module; both
    started again at the end whatever happened."""
    password = lab_vars["vault_redis_password"]
    pg = {name: hosts[name] for name in PGS}
    leader = wait_for_healthy_cluster(pg)
    replica = next(name for name in PGS if name != leader)
    wait_until("the Redis Cluster whole, in the role's layout", lambda: cluster_ok(hosts, password))
    redis_host = REDIS[0]
    hosts[replica].check_output("systemctl stop patroni")
    hosts[redis_host].check_output(f"systemctl stop {INSTANCE}")
    yield replica, leader, redis_host
    hosts[replica].run("systemctl start patroni")
    hosts[redis_host].run(f"systemctl start {INSTANCE}")


def test_verify_fails_naming_a_stopped_patroni_and_a_stopped_cluster_primary(broken, lab_vars, tmp_path):
    replica, leader, redis_host = broken
    report = tmp_path / "report.json"
    result, output = run_verify(report)
    assert result.returncode != 0, output[-5000:]
    assert not any(secret in output for secret in secret_values(lab_vars)), "a secret leaked into the output"
    failure = output[output.index("check(s) failed") :]
    assert f'{replica} postgres "patroni.service"' in failure, failure
    assert '"patroni cluster (GET /cluster)"' in failure, failure
    assert INSTANCE in failure, failure
    checks = verify_rows(report)
    assert checks[(replica, "patroni.service")]["detail"].startswith("inactive")
    # The leader's view names the stopped member: gone from the list, or listed as stopped.
    leader_view = checks[(leader, "patroni cluster (GET /cluster)")]
    assert leader_view["result"] == "FAIL", leader_view
    assert f"missing {replica}" in leader_view["detail"] or f"{replica} is stopped" in leader_view["detail"]
    assert checks[(redis_host, INSTANCE)]["result"] == "FAIL"
    assert checks[(redis_host, f"redis cluster :{CLUSTER_PORT}")]["result"] == "FAIL"
    # What is not broken is still reported healthy: etcd beside the stopped Patroni, the host's other
    # cluster instance and its queue Redis, the other tiers.
    assert checks[(replica, "etcd endpoint health")]["result"] == "ok"
    assert checks[(redis_host, "redis :6379 PING")]["result"] == "ok"
    for name in REDIS[1:]:
        assert checks[(name, INSTANCE)]["result"] == "ok", name
    assert checks[(next(n for n in PGS if n not in (replica, leader)), "patroni.service")]["result"] == "ok"
    tiers = verify_rows(report, key="tier")
    assert tiers[("lb", "haproxy.service")]["result"] == "ok"
    assert json.loads(report.read_text())["result"] == "FAIL"


def test_redis_rebalance_refuses_while_an_instance_is_down(broken, lab_vars):
    _, _, redis_host = broken
    result = run_playbook(REBALANCE)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-5000:]
    assert f"port {CLUSTER_PORT} of {redis_host} did not answer" in output, output[-5000:]
    rows = recap(result.stdout)
    assert set(REDIS) <= set(rows) and all(row["changed"] == 0 for row in rows.values()), rows
    assert not any(secret in output for secret in secret_values(lab_vars)), "a secret leaked into the output"


def test_after_the_repair_redis_rebalance_gives_the_shard_back(broken, hosts, lab_vars):
    """Both started again: the stopped primary is back as a replica (its shard failed over while it was
    down), redis_rebalance.yml hands the shard back with nothing lost, and a second run changes nothing.
    The Patroni replica streams again from the same leader."""
    replica, leader, redis_host = broken
    password = lab_vars["vault_redis_password"]
    hosts[replica].check_output("systemctl start patroni")
    hosts[redis_host].check_output(f"systemctl start {INSTANCE}")
    victim = hosts[redis_host]
    wait_until("the stopped instance back", lambda: role(victim, password) in ("master", "slave"), 60)
    came_back_as = role(victim, password)
    first = run_playbook(REBALANCE)
    assert first.returncode == 0, (first.stdout + first.stderr)[-5000:]
    changed = recap(first.stdout)[REDIS[0]]["changed"]
    assert changed == (1 if came_back_as == "slave" else 0), (came_back_as, recap(first.stdout))
    assert cluster_ok(hosts, password), "a host's first cluster instance is not its shard's primary"
    again = run_playbook(REBALANCE)
    assert again.returncode == 0, (again.stdout + again.stderr)[-5000:]
    assert all(row["changed"] == 0 for row in recap(again.stdout).values()), recap(again.stdout)
    assert wait_for_healthy_cluster({name: hosts[name] for name in PGS}, timeout=240) == leader
