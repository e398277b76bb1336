"""playbooks/phase3.yml as an operator previews a change: `--check --diff` on the converged phase-3
deployment runs to the end, changes nothing and prints no secret."""

import re

from playbook_runs import ROOT, run_playbook
from scenario_facts import secret_values


def test_check_diff_on_the_converged_deployment_reports_no_change(lab_vars):
    result = run_playbook(ROOT / "playbooks/phase3.yml", "--check", "--diff", timeout=1500)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    recap = output[output.rindex("PLAY RECAP") :]
    assert not re.search(r"(changed|failed|unreachable)=[1-9]", recap), recap
    assert not any(secret in output for secret in secret_values(lab_vars)), "a secret leaked into the output"
