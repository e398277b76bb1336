"""plugins/connection/podman.py: the name `podman` loads it, and it runs a module in one pipelined exec.

The round trips use a stand-in `podman` executable (ansible_podman_executable) that runs `exec` on this
machine and logs each call, so the tests count the execs a task costs and check that a module arrives on
stdin, without a container engine. The lab and every Molecule scenario use the plugin against real
containers.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

PLUGIN = ROOT / "plugins/connection/podman.py"

FAKE_PODMAN = r"""#!/bin/bash
# Stand-in for podman: logs its arguments and runs `exec` here, with stdin only under --interactive.
printf '%s\n' "$*" >> "$FAKE_PODMAN_LOG"
case "$1" in
  mount) exit 125 ;;
  cp) src="${2#*:}"; dst="${3#*:}"; exec cp "$src" "$dst" ;;
  exec)
    shift; interactive=0
    while [[ "$1" == --* ]]; do
      [[ "$1" == --interactive ]] && interactive=1
      [[ "$1" == --user ]] && shift
      shift
    done
    shift  # the container
    if (( interactive )); then exec "$@"; else exec "$@" < /dev/null; fi ;;
  *) echo "fake podman: unexpected $1" >&2; exit 2 ;;
esac
"""


def resolved_connection(name: str, env: dict) -> str:
    code = (
        "from ansible.plugins.loader import connection_loader, init_plugin_loader\n"
        "init_plugin_loader()\n"
        f"print(connection_loader.find_plugin_with_context({name!r}).plugin_resolved_path)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_project_config_loads_the_pipelined_plugin_as_podman():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    env.pop("ANSIBLE_CONNECTION_PLUGINS", None)
    assert Path(resolved_connection("podman", env)) == PLUGIN


def test_molecule_config_loads_the_pipelined_plugin_as_podman(tmp_path):
    config = yaml.safe_load((ROOT / ".config/molecule/config.yml").read_text())
    plugins = config["provisioner"]["env"]["ANSIBLE_CONNECTION_PLUGINS"]
    plugins = plugins.replace("${MOLECULE_PROJECT_DIRECTORY}", str(ROOT))
    # Molecule writes its own ansible.cfg: no project config, only its environment.
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"), ANSIBLE_CONNECTION_PLUGINS=plugins)
    assert Path(resolved_connection("podman", env)) == PLUGIN


@pytest.fixture
def fake_podman(tmp_path):
    exe = tmp_path / "podman"
    exe.write_text(FAKE_PODMAN)
    exe.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    return exe, log


def run_task(fake_podman, tmp_path, connection: str, task: dict) -> tuple[dict, list[str]]:
    exe, log = fake_podman
    log.write_text("")
    inventory = tmp_path / "inventory.yml"
    hostvars = {
        "ansible_connection": connection,
        "ansible_host": "grimbots-fake",
        "ansible_podman_executable": str(exe),
        "ansible_python_interpreter": sys.executable,
    }
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"fake": hostvars}}}))
    playbook = tmp_path / "play.yml"
    play = {"hosts": "fake", "gather_facts": False, "tasks": [dict(task, register="out")]}
    play["tasks"].append({"ansible.builtin.debug": {"var": "out"}})
    playbook.write_text(yaml.safe_dump([play]))
    # The project's plugin path without its callbacks, which would print around the JSON result.
    config = tmp_path / "ansible.cfg"
    config.write_text(f"[defaults]\nconnection_plugins = {ROOT / 'plugins/connection'}\n")
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "local-tmp"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "remote-tmp"),
        FAKE_PODMAN_LOG=str(log),
    )
    command = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), str(playbook)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["fake"]
    return result, log.read_text().splitlines()


def test_a_module_runs_in_one_interactive_exec(fake_podman, tmp_path):
    result, calls = run_task(
        fake_podman, tmp_path, "podman", {"ansible.builtin.command": {"cmd": "echo pipelined"}}
    )
    assert result["stdout"] == "pipelined"
    execs = [c for c in calls if c.startswith("exec ")]
    assert len(execs) == 1, calls
    assert execs[0].startswith("exec --interactive grimbots-fake "), execs


def test_the_collection_connection_costs_more_execs(fake_podman, tmp_path):
    """The figure the plugin exists for: the same task through containers.podman.podman."""
    _, calls = run_task(
        fake_podman,
        tmp_path,
        "containers.podman.podman",
        {"ansible.builtin.command": {"cmd": "echo copied"}},
    )
    assert len([c for c in calls if c.startswith("exec ")]) >= 3, calls


def test_a_file_still_arrives_without_stdin(fake_podman, tmp_path):
    """`copy` puts the file with `podman cp` (no mount here) and checks it with non-interactive execs."""
    dest = tmp_path / "copied.txt"
    result, calls = run_task(
        fake_podman,
        tmp_path,
        "podman",
        {"ansible.builtin.copy": {"content": "grimbots\n", "dest": str(dest), "mode": "0644"}},
    )
    assert result["changed"] is True
    assert dest.read_text() == "grimbots\n"
    assert any(c.startswith("cp ") for c in calls), calls


def test_host_keys_are_checked_for_every_inventory():
    """ssh to a production host verifies its key: the project's configuration does not turn that off."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    env.pop("ANSIBLE_HOST_KEY_CHECKING", None)
    code = (
        "from ansible.config.manager import ConfigManager\n"
        "print(ConfigManager().get_config_value('HOST_KEY_CHECKING'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True"
