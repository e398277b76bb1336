"""The phase-2 playbook as an operator runs it: --check --diff on the converged cluster changes nothing,
and a malformed variable stops the run in preflight with a message naming it."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

testinfra_hosts = ["ansible://pg1"]


def phase2(*args: str) -> subprocess.CompletedProcess:
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
            str(ROOT / "playbooks/phase2.yml"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


def test_check_diff_on_converged_cluster_reports_no_change():
    result = phase2("--check", "--diff")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "changed=0" in output and "failed=0" in output, output
    assert "lab-pg-" not in output and "lab-patroni-" not in output, "a secret leaked into the output"


@pytest.mark.parametrize(
    ("extra_vars", "tag", "named"),
    [
        (
            '{"patroni_recovery_preset": "turbo"}',
            "patroni_preflight",
            "patroni_recovery_preset",
        ),
        (
            '{"vault_patroni_rest_password": "short"}',
            "patroni_preflight",
            "vault_patroni_rest_password",
        ),
        (
            '{"vault_postgres_app_password": "short"}',
            "postgresql_preflight",
            "vault_postgres_app_password",
        ),
        (
            '{"postgresql_max_connections": "many"}',
            "postgresql_preflight",
            "postgresql_max_connections",
        ),
        ('{"etcd_election_timeout": 200}', "etcd_preflight", "etcd_election_timeout"),
    ],
)
def test_bad_variable_is_named(extra_vars, tag, named):
    result = phase2("--check", "--tags", tag, "-e", extra_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert named in output, output
    assert "changed=0" in output, output
