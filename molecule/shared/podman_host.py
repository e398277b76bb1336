"""Testinfra's `host` fixture for scenarios whose platforms are lab containers.

Molecule hands Testinfra an Ansible inventory whose hosts use the podman connection, which Testinfra has
no native backend for: it would run every command as an Ansible task (seconds each). Its podman backend
runs the same commands in the same container directly. A scenario's tests/conftest.py imports it:

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
    from podman_host import host  # noqa: F401
"""

import pytest
import testinfra


@pytest.fixture(scope="module")
def host(_testinfra_host):
    backend = _testinfra_host.backend
    if getattr(backend, "NAME", "") != "ansible":
        return _testinfra_host
    hostvars = backend.ansible_runner.get_variables(backend.host)
    if hostvars.get("ansible_connection") not in ("podman", "containers.podman.podman"):
        return _testinfra_host
    return testinfra.get_host(f"podman://{hostvars.get('ansible_host', backend.host)}")
