"""playbooks/verify.yml on the redis hosts of phase 3, as an engineer runs it: healthy, the cluster and
Sentinel checks pass; with a cluster primary stopped (run at once, before its replica has taken over) the
run fails and names the stopped instance, while the rest is still reported healthy."""

import json

import pytest
from conftest import (
    CLUSTER_PORTS,
    QUEUE_PORT,
    SERVICE,
    redis_cli,
    replication,
    wait_for,
    wait_for_healthy_queue,
    wait_for_whole_cluster,
)
from playbook_runs import run_verify, verify_rows


def role(host, port: int, admin_password: str) -> str:
    out = redis_cli(host, "-p", str(port), "role", password=admin_password)
    return out.splitlines()[0] if out else ""


def test_healthy_cluster_and_sentinels_pass(tmp_path, hosts, addresses, admin_password, sentinel_password):
    wait_for_whole_cluster(hosts, addresses, admin_password)
    wait_for_healthy_queue(hosts, addresses, admin_password, sentinel_password)
    report = tmp_path / "report.json"
    result, output = run_verify(report)
    assert result.returncode == 0, output[-4000:]
    assert admin_password not in output and sentinel_password not in output, "a secret leaked into the output"
    checks = verify_rows(report)
    for name in hosts:
        for port in CLUSTER_PORTS:
            assert checks[(name, f"redis-server@cluster-{port}.service")]["result"] == "ok"
            assert checks[(name, f"redis cluster :{port}")]["result"] == "ok", checks[
                (name, f"redis cluster :{port}")
            ]
        nodes = checks[(name, "redis cluster nodes")]
        assert nodes["result"] == "ok" and "3 primaries, 3 replicas" in nodes["detail"], nodes
        assert checks[(name, f"sentinel {SERVICE}")]["result"] == "ok", checks[(name, f"sentinel {SERVICE}")]
        assert checks[(name, f"redis :{QUEUE_PORT} PING")]["result"] == "ok"


@pytest.fixture
def stopped_cluster_primary(hosts, addresses, admin_password):
    """rha1's first cluster instance (a primary by the role's layout) stopped; afterwards started again,
    back as the primary of its shard, and the cluster whole before the next test."""
    victim, port = hosts["rha1"], CLUSTER_PORTS[0]
    wait_for_whole_cluster(hosts, addresses, admin_password)
    assert role(victim, port, admin_password) == "master"
    victim.check_output(f"systemctl stop redis-server@cluster-{port}.service")
    yield "rha1", port
    victim.check_output(f"systemctl start redis-server@cluster-{port}.service")
    wait_for(
        "rha1's instance back", lambda: role(victim, port, admin_password) in ("master", "slave"), timeout=60
    )
    if role(victim, port, admin_password) == "slave":
        wait_for(
            "rha1's instance in sync with its shard's new primary",
            lambda: replication(victim, admin_password, port).get("master_link_status") == "up",
            timeout=60,
        )
        assert redis_cli(victim, "-p", str(port), "cluster", "failover", password=admin_password) == "OK"
        wait_for(
            "rha1's instance primary again",
            lambda: role(victim, port, admin_password) == "master",
            timeout=60,
        )
    wait_for_whole_cluster(hosts, addresses, admin_password)


def test_stopped_cluster_primary_fails_naming_it(stopped_cluster_primary, tmp_path, hosts):
    name, port = stopped_cluster_primary
    report = tmp_path / "report.json"
    result, output = run_verify(report)
    assert result.returncode != 0, output[-4000:]
    failure = output[output.index("check(s) failed") :]
    assert f"redis-server@cluster-{port}.service" in failure, failure
    checks = verify_rows(report)
    assert checks[(name, f"redis-server@cluster-{port}.service")]["result"] == "FAIL"
    assert checks[(name, f"redis cluster :{port}")]["result"] == "FAIL"
    # The other instances and the queue Redis are still reported as they are: healthy.
    assert checks[(name, f"redis-server@cluster-{CLUSTER_PORTS[1]}.service")]["result"] == "ok"
    for other in (h for h in hosts if h != name):
        assert checks[(other, f"redis-server@cluster-{port}.service")]["result"] == "ok"
    assert checks[(name, f"redis :{QUEUE_PORT} PING")]["result"] == "ok"
    assert json.loads(report.read_text())["result"] == "FAIL"
