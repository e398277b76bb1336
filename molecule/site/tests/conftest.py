"""Fixtures of the site scenario: every host by name (podman backend) and the lab's settings, which the
scenario links as its group_vars."""

import sys
from pathlib import Path

import pytest
import testinfra
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from podman_host import host  # noqa: F401
from scenario_facts import address

LAB_VARS = SCENARIO.parents[1] / "inventories/lab/group_vars/lab"
LB = "site-lb1"
APPS = ["site-app1", "site-app2", "site-app3"]
REDIS = ["site-redis1", "site-redis2", "site-redis3"]
PGS = ["site-pg1", "site-pg2", "site-pg3"]


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    """Every variable of the lab's group_vars (lab-only secrets included)."""
    merged = {}
    for path in sorted(LAB_VARS.glob("*.yml")):
        merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


@pytest.fixture(scope="session")
def hosts() -> dict:
    return {name: testinfra.get_host(f"podman://{name}") for name in [LB, *APPS, *REDIS, *PGS]}


@pytest.fixture(scope="session")
def addresses(hosts) -> dict:
    return {name: address(h) for name, h in hosts.items()}
