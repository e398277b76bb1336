"""playbooks/boilerplate.yml (the phase guard every deploying playbook starts with), run in check mode
against tests/render/inventory.yml: which hosts site.yml deploys each tier on, by phase, and the refusal
of a role's own copy of a topology setting."""

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, ansible_playbook

APPS = ["app1", "app2", "app3"]
REDIS = ["redis1", "redis2", "redis3"]
PGS = ["pg1", "pg2", "pg3"]


def run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "groups.json"
    result = ansible_playbook(
        ROOT / "tests/render/run_groups.yml", "--check", "-e", f"run_groups_file={out}", *args
    )
    return result, (json.loads(out.read_text()) if out.exists() else {})


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        (None, {"app": APPS, "redis_ha": REDIS, "postgres": PGS, "lb": ["lb1"]}),
        (3, {"app": APPS, "redis_ha": REDIS, "postgres": PGS, "lb": ["lb1"]}),
        (2, {"app": APPS, "redis_standalone": ["redis1"], "postgres": PGS}),
        (1, {"app": ["app1"], "redis_standalone": ["redis1"]}),
    ],
)
def test_site_deploys_each_tier_where_the_phase_says(tmp_path, phase, expected):
    args = [] if phase is None else ["-e", f"grimbots_phase={phase}"]
    result, groups = run(tmp_path, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"this run deploys phase {phase or 3}." in result.stdout, result.stdout
    # (group_by adds hosts in the order they finish; plays run them in that order too)
    assert {group: sorted(hosts) for group, hosts in groups.items()} == {
        f"grimbots_run_{tier}": hosts for tier, hosts in expected.items()
    }


def test_an_impossible_phase_is_refused(tmp_path):
    result, _ = run(tmp_path, "-e", "grimbots_phase=4")
    assert result.returncode != 0
    assert "grimbots_phase is 4: it must be 1, 2 or 3" in result.stdout + result.stderr


def test_a_phase_playbook_refuses_another_phase(tmp_path):
    # phase1.yml passes grimbots_playbook_phase 1; -e grimbots_phase would override what it deploys.
    result, _ = run(tmp_path, "-e", "grimbots_playbook_phase=1", "-e", "grimbots_phase=3")
    assert result.returncode != 0
    assert "grimbots_phase is 3, but this playbook deploys phase 1" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("copy", "value", "topology"),
    [("redis_port", 6380, "grimbots_redis_port"), ("etcd_group", "dcs", "grimbots_etcd_group")],
)
def test_a_roles_copy_of_a_topology_setting_is_refused(tmp_path, copy, value, topology):
    result, _ = run(tmp_path, "-e", json.dumps({copy: value}))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{copy} set in the inventory" in output and f"Set {topology} (roles/grimbots)" in output, output
