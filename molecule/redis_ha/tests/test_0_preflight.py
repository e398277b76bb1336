"""Bad input for the cluster and sentinel modes fails in preflight, before anything changes, with a
message naming the variable and no secret; good input in check mode on the converged hosts reports
no change in either mode."""

import json
from pathlib import Path

import pytest
from playbook_runs import run_side_by_side

PLAYBOOK = Path(__file__).with_name("check_mode_probe.yml")

BAD = [
    ({"redis_mode": "replica"}, [], "redis_mode must be one of"),
    ({"redis_mode": "cluster", "redis_group": "ungrouped"}, [], "redis_mode cluster needs at least 3 hosts"),
    ({"redis_mode": "cluster"}, ["--limit", "rha1"], "no --limit"),
    ({"redis_mode": "cluster", "redis_cluster_ports": [7000]}, [], "redis_cluster_ports must list"),
    ({"redis_mode": "cluster", "redis_cluster_ports": [7000, 7000]}, [], "redis_cluster_ports must list"),
    ({"redis_mode": "cluster", "redis_cluster_ports": [7000, 16379]}, [], "redis_cluster_ports must list"),
    (
        {"redis_mode": "cluster", "redis_cluster_ports": [7000, 7001, 7002, 7003]},
        [],
        "redis_cluster_ports must list",
    ),
    ({"redis_mode": "sentinel", "redis_sentinel_quorum": 4}, [], "redis_sentinel_quorum (4) is larger"),
    (
        {"redis_mode": "sentinel", "vault_redis_sentinel_password": ""},
        [],
        "redis_sentinel_password (vault_redis_sentinel_password)",
    ),
    (
        {"redis_mode": "sentinel", "vault_redis_sentinel_password": "lab-ha-admin-6Rk2pW8xNc4Vt1Zq"},
        [],
        "redis_sentinel_password must differ",
    ),
    (
        {"redis_mode": "sentinel", "redis_sentinel_initial_primary": "rha9"},
        [],
        "redis_sentinel_initial_primary",
    ),
    (
        {"redis_mode": "sentinel", "redis_sentinel_port": 6379},
        [],
        "redis_port and redis_sentinel_port must differ",
    ),
]


@pytest.fixture(scope="module")
def bad_runs():
    runs = [["--check", "--diff", *extra, "-e", json.dumps(variables)] for variables, extra, _ in BAD]
    return run_side_by_side(PLAYBOOK, runs, workers=3)


@pytest.mark.parametrize("case", range(len(BAD)), ids=[expected for _, _, expected in BAD])
def test_bad_variable_is_named(bad_runs, case, admin_password, app_password, sentinel_password):
    _, _, expected = BAD[case]
    result = bad_runs[case]
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert expected in output, output[-3000:]
    # Preflight stops the run before any task that changes a host.
    recap = [line for line in output.splitlines() if line.startswith("rha") and "changed=" in line]
    assert recap and all(" changed=0 " in line for line in recap), recap
    for secret in (admin_password, app_password, sentinel_password):
        assert secret not in output


@pytest.mark.parametrize("mode", ["cluster", "sentinel"])
def test_check_mode_on_converged_hosts_reports_no_change(
    mode, admin_password, app_password, sentinel_password
):
    (result,) = run_side_by_side(PLAYBOOK, [["--check", "--diff", "-e", json.dumps({"redis_mode": mode})]])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    recap = [line for line in output.splitlines() if line.startswith("rha") and "changed=" in line]
    assert len(recap) == 3 and all("changed=0" in line and "failed=0" in line for line in recap), recap
    for secret in (admin_password, app_password, sentinel_password):
        assert secret not in output
