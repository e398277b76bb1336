"""Shared facts of the scenario: the variables molecule.yml gives the role."""

import functools
import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from podman_host import host  # noqa: F401
from scenario_facts import address, redis_cli, scenario_vars


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    return scenario_vars(SCENARIO, "redis")


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
    return address(host)


@pytest.fixture(scope="module")
def cli(host):
    """redis-cli in the container: cli(*args, password=..., user=...) -> output, stripped."""
    return functools.partial(redis_cli, host)
