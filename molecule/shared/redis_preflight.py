"""Tests of roles/redis's preflight in its cluster and sentinel modes, shared by the scenarios with
three hosts of the group redis (redis_ha, site): each bad case is a check-mode run of
molecule/shared/redis_probe.yml that preflight must stop, naming the variable, before any task changes
a host; good input in check mode on the converged hosts reports no change in either mode.

A scenario's conftest defines the fixtures `redis_hosts` (the redis hosts' names, first one first),
`redis_admin_password` (vault_redis_password) and `redis_secrets` (what no output may contain); its
test module imports the tests and their fixture:

    from redis_preflight import bad_runs, test_bad_variable_is_named, test_check_mode_...  # noqa: F401
"""

import json
from pathlib import Path

import pytest
from playbook_runs import run_side_by_side

# The whole role in the mode and with the variables a case passes (-e redis_mode=...).
PROBE = Path(__file__).with_name("redis_probe.yml")


def bad_cases(first_host: str, admin_password: str) -> list[tuple[dict, list[str], str]]:
    """(extra variables, extra arguments, text the failure must contain), for a scenario whose first
    redis host is `first_host` and whose admin password (vault_redis_password) is `admin_password`."""
    return [
        ({"redis_mode": "replica"}, [], "redis_mode must be one of"),
        (
            {"redis_mode": "cluster", "redis_group": "ungrouped"},
            [],
            "redis_mode cluster needs at least 3 hosts",
        ),
        ({"redis_mode": "cluster"}, ["--limit", first_host], "no --limit"),
        ({"redis_mode": "cluster", "redis_cluster_ports": [7000]}, [], "redis_cluster_ports must list"),
        ({"redis_mode": "cluster", "redis_cluster_ports": [7000, 7000]}, [], "redis_cluster_ports must list"),
        (
            {"redis_mode": "cluster", "redis_cluster_ports": [7000, 16379]},
            [],
            "redis_cluster_ports must list",
        ),
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
            {"redis_mode": "sentinel", "vault_redis_sentinel_password": admin_password},
            [],
            "redis_sentinel_password must differ",
        ),
        (
            {"redis_mode": "sentinel", "redis_sentinel_initial_primary": "no-such-host9"},
            [],
            "redis_sentinel_initial_primary",
        ),
        (
            {"redis_mode": "sentinel", "redis_sentinel_port": 6379},
            [],
            "redis_port and redis_sentinel_port must differ",
        ),
    ]


def recap_lines(output: str, hosts: list[str]) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(tuple(hosts)) and "changed=" in line]


def assert_refused(result, expected: str, hosts: list[str], secrets: list[str]) -> None:
    """A bad case's run failed naming `expected`, changed nothing on `hosts`, and printed no secret."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert expected in output, output[-3000:]
    # Preflight stops the run before any task that changes a host.
    recap = recap_lines(output, hosts)
    assert recap and all(" changed=0 " in line for line in recap), recap
    assert not any(secret in output for secret in secrets), "a secret leaked into the output"


def assert_no_change(result, hosts: list[str], secrets: list[str]) -> None:
    """A check-mode run of good input on the converged `hosts` passed with nothing to change."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    recap = recap_lines(output, hosts)
    assert len(recap) == len(hosts) and all("changed=0" in line and "failed=0" in line for line in recap), (
        recap
    )
    assert not any(secret in output for secret in secrets), "a secret leaked into the output"


# The cases' expected texts, which name them (they do not depend on the scenario).
EXPECTED = [expected for _, _, expected in bad_cases("first-host", "admin-password")]


@pytest.fixture(scope="module")
def bad_runs(redis_hosts, redis_admin_password):
    cases = bad_cases(redis_hosts[0], redis_admin_password)
    runs = [["--check", "--diff", *extra, "-e", json.dumps(variables)] for variables, extra, _ in cases]
    return run_side_by_side(PROBE, runs, workers=3)


@pytest.mark.parametrize("case", range(len(EXPECTED)), ids=EXPECTED)
def test_bad_variable_is_named(bad_runs, case, redis_hosts, redis_secrets):
    assert_refused(bad_runs[case], EXPECTED[case], redis_hosts, redis_secrets)


@pytest.mark.parametrize("mode", ["cluster", "sentinel"])
def test_check_mode_on_converged_hosts_reports_no_change(mode, redis_hosts, redis_secrets):
    (result,) = run_side_by_side(PROBE, [["--check", "--diff", "-e", json.dumps({"redis_mode": mode})]])
    assert_no_change(result, redis_hosts, redis_secrets)
