"""playbooks/verify.yml on the PostgreSQL tier of phase 2, as an engineer runs it: the healthy cluster
passes with nothing changed; with Patroni stopped on a replica the run fails, naming the
Patroni checks in its message and in the report; the replica streams again once Patroni is back."""

import json

from patroni_cluster import PG_HOSTS, wait_for_healthy_cluster
from playbook_runs import run_verify, verify_rows

POSTGRES_CHECKS = [
    "patroni.service",
    "etcd.service",
    "patroni cluster (GET /cluster)",
    "etcd endpoint health",
]


def test_healthy_cluster_passes_and_changes_nothing(pg, lab_vars, tmp_path):
    wait_for_healthy_cluster(pg)
    report = tmp_path / "report.json"
    result, output = run_verify(report)
    assert result.returncode == 0, output
    assert "changed=0" in output and "failed=0" in output, output
    assert not any(str(lab_vars[name]) in output for name in lab_vars if name.startswith("vault_")), (
        "a secret leaked into the output"
    )
    checks = verify_rows(report)
    for name in PG_HOSTS:
        for check in [*POSTGRES_CHECKS, "etcd members", "listening ports"]:
            assert checks[(name, check)]["result"] == "ok", checks[(name, check)]
        assert checks[(name, "etcd members")]["detail"].startswith("3 members")
    assert json.loads(report.read_text())["result"] == "ok"


def test_patroni_stopped_on_a_replica_fails_naming_it(pg, tmp_path):
    leader = wait_for_healthy_cluster(pg)
    replica = next(name for name in PG_HOSTS if name != leader)
    report = tmp_path / "report.json"
    pg[replica].check_output("systemctl stop patroni")
    try:
        result, output = run_verify(report)
    finally:
        pg[replica].check_output("systemctl start patroni")
        # Back as a streaming replica of the same leader.
        assert wait_for_healthy_cluster(pg, timeout=240) == leader
    assert result.returncode != 0, output
    failure = output[output.index("check(s) failed") :]
    assert f'{replica} postgres "patroni.service"' in failure, failure
    assert '"patroni cluster (GET /cluster)"' in failure, failure
    checks = verify_rows(report)
    assert checks[(replica, "patroni.service")]["detail"].startswith("inactive")
    # The leader's view of the cluster names the stopped member: gone from the member list, or still
    # listed (its key has not expired yet) in state "stopped".
    leader_view = checks[(leader, "patroni cluster (GET /cluster)")]
    assert leader_view["result"] == "FAIL", leader_view
    detail = leader_view["detail"]
    assert f"missing {replica}" in detail or f"{replica} is stopped" in detail, leader_view
    # etcd on the same host is not Patroni: it still runs.
    assert checks[(replica, "etcd endpoint health")]["result"] == "ok"
