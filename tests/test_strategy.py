"""plugins/strategy/mitogen_linear.py: ansible.cfg and Molecule's configuration run every play over Mitogen.

The check that counts is behavioural: two `command` tasks report the process that started them. Over
Mitogen both come from the one interpreter Mitogen keeps on the host; with Ansible's own `linear`
strategy every module is a process of its own, so the parents differ.
"""

import os
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import ROOT, ansible_playbook

PLUGINS = ROOT / "plugins/strategy"

PLAYBOOK = """
- name: Two modules, each reporting the process that ran it
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: First
      ansible.builtin.command: sh -c 'echo $PPID'
      register: first
      changed_when: false
    - name: Second
      ansible.builtin.command: sh -c 'echo $PPID'
      register: second
      changed_when: false
    - name: Report
      ansible.builtin.debug:
        msg: "PARENTS {{ first.stdout }} {{ second.stdout }}"
"""


def parents(tmp_path: Path) -> tuple[str, str]:
    playbook = tmp_path / "parents.yml"
    playbook.write_text(PLAYBOOK)
    inventory = tmp_path / "hosts.yml"
    localhost = {"ansible_python_interpreter": sys.executable}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": localhost}}}))
    result = ansible_playbook(playbook, inventory=inventory)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "PARENTS " in line)
    first, second = line.split("PARENTS ", 1)[1].strip().strip('"').split()[:2]
    return first, second


def test_project_config_selects_the_mitogen_strategy():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    code = (
        "from ansible import constants as C\n"
        "from ansible.plugins.loader import strategy_loader, init_plugin_loader\n"
        "init_plugin_loader()\n"
        "import ansible_mitogen.strategy\n"
        "cls = strategy_loader.get(C.DEFAULT_STRATEGY, class_only=True)\n"
        "print(C.DEFAULT_STRATEGY, issubclass(cls, ansible_mitogen.strategy.StrategyMixin))\n"
        "print(strategy_loader.find_plugin_with_context(C.DEFAULT_STRATEGY).plugin_resolved_path)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "mitogen_linear True"
    assert Path(lines[-1]) == PLUGINS / "mitogen_linear.py"


def test_molecule_config_selects_the_same_strategy():
    config = yaml.safe_load((ROOT / ".config/molecule/config.yml").read_text())
    env = config["provisioner"]["env"]
    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert env["ANSIBLE_STRATEGY_PLUGINS"] == "${MOLECULE_PROJECT_DIRECTORY}/plugins/strategy"


def test_modules_share_one_interpreter_over_mitogen(tmp_path):
    first, second = parents(tmp_path)
    assert first == second


def test_linear_strategy_still_available_without_mitogen(tmp_path, monkeypatch):
    monkeypatch.setenv("ANSIBLE_STRATEGY", "linear")
    first, second = parents(tmp_path)
    assert first != second
