"""Shared facts of the scenario: the variables molecule.yml gives the role."""

import shlex
from pathlib import Path

import pytest
import testinfra
import yaml

SCENARIO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def host(_testinfra_host):
    """The container, reached with `podman exec`.

    Molecule hands Testinfra an Ansible inventory whose hosts use the podman
    connection, which Testinfra has no native backend for: it would run every
    command as an Ansible task (seconds each). Its podman backend runs the same
    commands in the same container directly."""
    backend = _testinfra_host.backend
    if getattr(backend, "NAME", "") != "ansible":
        return _testinfra_host
    hostvars = backend.ansible_runner.get_variables(backend.host)
    if hostvars.get("ansible_connection") not in ("podman", "containers.podman.podman"):
        return _testinfra_host
    return testinfra.get_host(f"podman://{hostvars.get('ansible_host', backend.host)}")


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    config = yaml.safe_load((SCENARIO / "molecule.yml").read_text())
    return config["provisioner"]["inventory"]["group_vars"]["redis"]


@pytest.fixture(scope="session")
def admin_password(lab_vars) -> str:
    return lab_vars["vault_redis_password"]


@pytest.fixture(scope="session")
def app_password(lab_vars) -> str:
    return lab_vars["vault_redis_app_password"]


@pytest.fixture(scope="session")
def app_user() -> str:
    # The role's default (roles/redis/defaults/main.yml).
    return "grimbots"


@pytest.fixture(scope="module")
def host_ip(host) -> str:
    """The container's own address on the scenario's network."""
    route = host.check_output("ip -4 -o route get 1.1.1.1").split()
    return route[route.index("src") + 1]


@pytest.fixture(scope="module")
def cli(host):
    """Run redis-cli in the container (for at most 10 s); the password goes in
    REDISCLI_AUTH, not on the command line. Returns the output, stripped."""

    def run(*args: str, password: str | None = None, user: str | None = None) -> str:
        env = f"REDISCLI_AUTH={shlex.quote(password)} " if password else ""
        opts = f"--user {shlex.quote(user)} " if user else ""
        quoted = " ".join(shlex.quote(a) for a in args)
        result = host.run(f"{env}timeout 10 redis-cli --no-auth-warning {opts}{quoted}")
        return (result.stdout + result.stderr).strip()

    return run
