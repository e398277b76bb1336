"""The phase-1 playbook as an operator runs it: --check --diff on the converged host changes nothing,
and a malformed variable stops the run in preflight with a message naming it."""

from pathlib import Path

import pytest
from playbook_runs import run_playbook, run_side_by_side

PHASE1 = Path(__file__).resolve().parents[3] / "playbooks/phase1.yml"


def phase1(*args: str):
    return run_playbook(PHASE1, *args)


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
    runs = [["--check", "--tags", "app_preflight", "-e", extra] for extra in BAD_VARIABLES.values()]
    return dict(zip(BAD_VARIABLES, run_side_by_side(PHASE1, runs), strict=True))


@pytest.mark.parametrize("named", BAD_VARIABLES)
def test_bad_variable_is_named(preflight_runs, named):
    result = preflight_runs[named]
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert named in output, output
    assert "changed=0" in output, output
