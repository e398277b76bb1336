"""Helpers of the toolkit's unit tests (make test-unit)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RENDER_INVENTORY = ROOT / "tests/render/inventory.yml"


def ansible_playbook(
    playbook: Path, *args: str, inventory: Path = RENDER_INVENTORY
) -> subprocess.CompletedProcess:
    """`ansible-playbook -i <inventory> <playbook> <args>` of this venv with the project's ansible.cfg, facts
    kept in memory; output captured, never raises."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_CACHE_PLUGIN="memory")
    env.update(ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i",
        str(inventory),
        str(playbook),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
