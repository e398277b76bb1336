"""Bad input fails in preflight with a message naming the variable and changes nothing;
good input in check mode on a converged host reports no change."""

from pathlib import Path

import pytest
from playbook_runs import run_playbook, run_side_by_side

PLAYBOOK = Path(__file__).with_name("check_mode_probe.yml")


def run_probe(extra_vars: str):
    return run_playbook(PLAYBOOK, "--check", "--diff", "--limit", "common1", "-e", extra_vars, timeout=300)


BAD_VARIABLES = [
    ('{"common_nofile_limit": "lots"}', "common_nofile_limit"),
    ('{"common_nofile_limit": 100}', "common_nofile_limit"),
    ('{"common_sysctl_extra": {"Net Core": 1}}', "common_sysctl"),
    ('{"common_sysctl_extra": {"vm.swappiness": "low"}}', "common_sysctl"),
    ('{"common_journald_system_max_use": "a lot"}', "common_journald_system_max_use"),
    ('{"common_service_accounts": [{"name": "root"}]}', "common_service_accounts"),
    ('{"common_journald_storage": "disk"}', "common_journald_storage"),
]


@pytest.fixture(scope="module")
def preflight_runs():
    runs = [["--check", "--diff", "--limit", "common1", "-e", extra] for extra, _ in BAD_VARIABLES]
    return run_side_by_side(PLAYBOOK, runs)


@pytest.mark.parametrize("case", range(len(BAD_VARIABLES)), ids=[n for _, n in BAD_VARIABLES])
def test_bad_variable_is_named(preflight_runs, case):
    named = BAD_VARIABLES[case][1]
    result = preflight_runs[case]
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert named in output
    # Preflight stops the run before any task that changes the host.
    assert "changed=0" in output


def test_check_mode_on_converged_host_reports_no_change():
    result = run_probe('{"common_nofile_limit": 20000}')
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "changed=0" in output and "failed=0" in output, output
