"""Shared facts of the phase-3 scenario: its variables (molecule.yml), every host by name (podman
backend: commands run in the containers directly), and helpers for the checks that span hosts."""

import os
import shlex
import sys
import time
from pathlib import Path

import pytest
import testinfra

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from podman_host import host  # noqa: F401
from scenario_facts import FigureLog, address, scenario_vars

LB = "p3-lb1"
APPS = ["p3-app1", "p3-app2", "p3-app3"]
REDIS = ["p3-redis1", "p3-redis2", "p3-redis3"]
PGS = ["p3-pg1", "p3-pg2", "p3-pg3"]
CLUSTER_PORTS = [7000, 7001]
QUEUE_PORT = 6379
SENTINEL_PORT = 26379
SENTINEL_SERVICE = "grimbots-queue"
# Figures measured by the drills, shown at the end of the run.
FIGURES = FigureLog("phase 3 figures")


def pytest_terminal_summary(terminalreporter):
    FIGURES.report(terminalreporter)


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    return scenario_vars(SCENARIO)


@pytest.fixture(scope="session")
def hosts() -> dict:
    """Every host of the scenario by name, as a testinfra host."""
    names = [LB, *APPS, *REDIS, *PGS]
    return {name: testinfra.get_host(f"podman://{name}") for name in names}


@pytest.fixture(scope="session")
def addresses(hosts) -> dict:
    return {name: address(h) for name, h in hosts.items()}


def redis_cli(host, port: int, *args: str, password: str | None = None, user: str | None = None, at=None):
    """redis-cli in the container against `at` (an address; loopback by default) and port."""
    env = f"REDISCLI_AUTH={shlex.quote(password)} " if password else ""
    target = f"-h {at} " if at else ""
    user_arg = f"--user {shlex.quote(user)} " if user else ""
    command = f"{env}timeout 10 redis-cli --no-auth-warning {target}-p {port} {user_arg}" + " ".join(
        shlex.quote(a) for a in args
    )
    return host.run(command)


def sql_through_lb(hosts, addresses, lab_vars, port: int, query: str) -> str:
    """One value from the app database through the load balancer's 5000 (primary) or 5001 (a replica),
    as the app user, with psql on a postgres host (PostgreSQL sees the lb's address)."""
    password = shlex.quote(lab_vars["vault_postgres_app_password"])
    dsn = shlex.quote(f"host={addresses[LB]} port={port} dbname=grimbots user=grimbots connect_timeout=5")
    return hosts[PGS[0]].check_output(f"PGPASSWORD={password} psql -X -A -t {dsn} -c {shlex.quote(query)}")


def wait_until(check, what: str, timeout: float = 120, interval: float = 1):
    """Poll `check` until it returns a truthy value; fail naming `what` after `timeout` seconds."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout:
        try:
            last = check()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last})")


def inventory() -> str:
    return os.environ["MOLECULE_INVENTORY_FILE"]
