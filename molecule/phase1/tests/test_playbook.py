"""The phase-1 playbook as an operator runs it: --check --diff on the converged host changes nothing,
and a malformed variable stops the run in preflight with a message naming it."""

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def phase1(*args: str) -> subprocess.CompletedProcess:
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
            str(ROOT / "playbooks/phase1.yml"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_check_diff_on_converged_host_reports_no_change():
    result = phase1("--check", "--diff")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "changed=0" in output and "failed=0" in output, output


BAD_VARIABLES = {
    "app_workers": '{"app_workers": {"tasks-1": 1}}',
    "app_port": '{"app_port": "http"}',
    "app_database_url": '{"app_database_url": "mysql://db/grimbots"}',
    "vault_app_gateway_secrets": '{"vault_app_gateway_secrets": {"stubpay": "short"}}',
}


@pytest.fixture(scope="module")
def preflight_runs():
    """Each malformed variable in its own run (the first failure stops a run), the runs side by side."""
    with ThreadPoolExecutor(max_workers=len(BAD_VARIABLES)) as pool:
        futures = {
            name: pool.submit(phase1, "--check", "--tags", "app_preflight", "-e", extra)
            for name, extra in BAD_VARIABLES.items()
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("named", BAD_VARIABLES)
def test_bad_variable_is_named(preflight_runs, named):
    result = preflight_runs[named]
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert named in output, output
    assert "changed=0" in output, output
