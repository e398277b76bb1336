"""Fixtures of the site scenario: every host by name (podman backend) and the lab's settings, which the
scenario links as its group_vars."""

import sys
from pathlib import Path

import pytest
import testinfra

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from podman_host import host  # noqa: F401
from scenario_facts import address, scenario_vars, secret_values

LB = "site-lb1"
APPS = ["site-app1", "site-app2", "site-app3"]
REDIS = ["site-redis1", "site-redis2", "site-redis3"]
PGS = ["site-pg1", "site-pg2", "site-pg3"]


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    """Every variable of the lab's group_vars (lab-only secrets included)."""
    return scenario_vars(SCENARIO)


@pytest.fixture(scope="session")
def hosts() -> dict:
    return {name: testinfra.get_host(f"podman://{name}") for name in [LB, *APPS, *REDIS, *PGS]}


@pytest.fixture(scope="session")
def addresses(hosts) -> dict:
    return {name: address(h) for name, h in hosts.items()}


@pytest.fixture(scope="session")
def redis_hosts() -> list[str]:
    """The redis hosts, for molecule/shared/redis_preflight.py's tests."""
    return REDIS


@pytest.fixture(scope="session")
def redis_admin_password(lab_vars) -> str:
    return lab_vars["vault_redis_password"]


@pytest.fixture(scope="session")
def redis_secrets(lab_vars) -> list[str]:
    return secret_values(lab_vars)
