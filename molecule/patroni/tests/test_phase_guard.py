"""Re-runs are safe (playbooks/boilerplate.yml, roles/grimbots): the converged phase-2 cluster records its
phase on every host; phase1.yml against it refuses before anything changes, naming the phase it found;
site.yml converges it to the same end state with nothing changed."""

import json

from patroni_cluster import PG_HOSTS, wait_for_healthy_cluster
from playbook_runs import ROOT, recap, run_playbook

FACT = "/etc/ansible/facts.d/grimbots.fact"


def test_every_host_records_phase_2(pg):
    for name in PG_HOSTS:
        assert json.loads(pg[name].file(FACT).content_string) == {"phase": 2}, name


def test_phase1_refuses_to_take_the_cluster_back(pg):
    leader = wait_for_healthy_cluster(pg)
    result = run_playbook(ROOT / "playbooks/phase1.yml", timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "This deployment is at phase 2" in output, output
    assert "this playbook deploys phase 1" in output, output
    rows = recap(result.stdout)
    assert set(PG_HOSTS) <= set(rows), output
    assert all(row["changed"] == 0 for row in rows.values()), output
    # Nothing moved: the phase is still 2, the same leader leads a healthy cluster.
    for name in PG_HOSTS:
        assert json.loads(pg[name].file(FACT).content_string) == {"phase": 2}, name
    assert wait_for_healthy_cluster(pg) == leader


def test_site_converges_the_cluster_with_nothing_changed(pg, lab_vars):
    wait_for_healthy_cluster(pg)
    result = run_playbook(ROOT / "playbooks/site.yml", timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = recap(result.stdout)
    assert set(PG_HOSTS) <= set(rows), output
    assert all(row["changed"] == 0 and row["failed"] == 0 for row in rows.values()), output
    assert not any(str(value) in output for name, value in lab_vars.items() if name.startswith("vault_")), (
        "a secret leaked into the output"
    )
