"""Run a playbook against the scenario's hosts the way an operator would, from a Testinfra test.

Scenario tests import it after putting molecule/shared on sys.path (see podman_host.py):

    from playbook_runs import recap, run_playbook, run_side_by_side, run_verify, verify_rows
"""

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_playbook(
    playbook: Path | str, *args: str, timeout: int = 600, inventory: str | None = None
) -> subprocess.CompletedProcess:
    """`ansible-playbook -i <the scenario's inventory, or the one given> <playbook> <args>`; output captured,
    never raises."""
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        # Fresh facts of the scenario's containers, never the cached ones of a lab host of the same name.
        ANSIBLE_CACHE_PLUGIN="memory",
    )
    inventory = inventory or os.environ["MOLECULE_INVENTORY_FILE"]
    command = ["ansible-playbook", "-i", inventory, str(playbook), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)


def run_side_by_side(playbook: Path | str, runs: list[list[str]], workers: int = 4) -> list:
    """Several independent runs of one playbook at once (each bad variable needs its own run, since the
    first failure stops a run); results in the order given."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda args: run_playbook(playbook, *args), runs))


def run_verify(report: Path, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    """playbooks/verify.yml against the scenario's hosts, its JSON report written to `report`; returns the
    result and its whole output (stdout and stderr)."""
    result = run_playbook(ROOT / "playbooks/verify.yml", "-e", f"verify_report_path={report}", *args)
    return result, result.stdout + result.stderr


def verify_rows(report: Path, key: str = "host") -> dict:
    """(row[key], check) -> row of verify's JSON report; key is "host" or "tier"."""
    return {(row[key], row["check"]): row for row in json.loads(report.read_text())["checks"]}


def recap(output: str) -> dict:
    """host -> {"ok": n, "changed": n, "unreachable": n, "failed": n} from a run's PLAY RECAP."""
    rows = re.findall(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output, re.M)
    keys = ("ok", "changed", "unreachable", "failed")
    return {host: dict(zip(keys, map(int, counts), strict=True)) for host, *counts in rows}


def assert_phase_playbook_refuses(playbook_phase: int, found_phase: int, timeout: int = 300) -> dict:
    """playbooks/phase<playbook_phase>.yml against a deployment at `found_phase`: it must fail, name both
    phases, and change nothing. Returns its recap rows."""
    result = run_playbook(ROOT / f"playbooks/phase{playbook_phase}.yml", timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-5000:]
    assert f"This deployment is at phase {found_phase}" in output, output[-5000:]
    assert f"this playbook deploys phase {playbook_phase}" in output, output[-5000:]
    rows = recap(result.stdout)
    assert rows and all(row["changed"] == 0 for row in rows.values()), rows
    return rows
