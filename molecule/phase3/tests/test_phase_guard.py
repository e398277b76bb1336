"""Re-runs after the upgrade path 1 -> 2 -> 3 are safe: phase1.yml and phase2.yml against the phase-3
deployment refuse before anything changes, naming phase 3; site.yml converges it with nothing changed
(the upgrade path and site.yml reach the same end state)."""

import pytest
from playbook_runs import ROOT, assert_phase_playbook_refuses, recap, run_playbook
from scenario_facts import secret_values


@pytest.mark.parametrize("phase", [1, 2])
def test_an_earlier_phase_playbook_refuses(phase, hosts):
    rows = assert_phase_playbook_refuses(phase, 3)
    assert set(hosts) <= set(rows), rows


def test_site_converges_the_upgraded_deployment_with_nothing_changed(lab_vars, hosts):
    result = run_playbook(ROOT / "playbooks/site.yml", timeout=1500)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    rows = recap(result.stdout)
    assert set(hosts) <= set(rows), rows
    assert all(row["changed"] == row["unreachable"] == row["failed"] == 0 for row in rows.values()), rows
    assert not any(secret in output for secret in secret_values(lab_vars)), "a secret leaked into the output"
