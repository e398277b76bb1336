"""Bad input fails in preflight with a message naming the variable and changes nothing;
good input in check mode on a converged host reports no change."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(__file__).with_name("check_mode_probe.yml")


def run_probe(extra_vars: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
    )
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(PLAYBOOK),
            "--check",
            "--diff",
            "--limit",
            "common1",
            "-e",
            extra_vars,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    ("extra_vars", "named"),
    [
        ('{"common_nofile_limit": "lots"}', "common_nofile_limit"),
        ('{"common_nofile_limit": 100}', "common_nofile_limit"),
        ('{"common_sysctl_extra": {"Net Core": 1}}', "common_sysctl"),
        ('{"common_sysctl_extra": {"vm.swappiness": "low"}}', "common_sysctl"),
        (
            '{"common_journald_system_max_use": "a lot"}',
            "common_journald_system_max_use",
        ),
        ('{"common_service_accounts": [{"name": "root"}]}', "common_service_accounts"),
        ('{"common_journald_storage": "disk"}', "common_journald_storage"),
    ],
)
def test_bad_variable_is_named(extra_vars, named):
    result = run_probe(extra_vars)
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
