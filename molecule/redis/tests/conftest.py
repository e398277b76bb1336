"""Shared facts of the scenario: the variables molecule.yml gives the role."""

import shlex
import sys
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from podman_host import host  # noqa: F401


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
