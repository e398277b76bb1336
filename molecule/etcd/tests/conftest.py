"""Shared facts of the scenario: the variables molecule.yml gives the role, the members, and etcdctl run in
a container with or without credentials (always in the environment, never on the command line)."""

import json
import shlex
import sys
from pathlib import Path

import pytest
import testinfra

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from podman_host import host  # noqa: F401
from scenario_facts import FigureLog, address, scenario_vars  # noqa: F401 (address: for the tests)

FIGURES = FigureLog("etcd figures")


def pytest_terminal_summary(terminalreporter):
    FIGURES.report(terminalreporter)


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    return scenario_vars(SCENARIO)


@pytest.fixture(scope="session")
def nodes() -> dict:
    """testinfra hosts of every platform, by name."""
    return {f"etcd{n}": testinfra.get_host(f"podman://etcd{n}") for n in range(1, 5)}


def etcdctl(host, args: str, user: str | None = None, endpoints: str = "http://127.0.0.1:2379"):
    """`etcdctl <args>` in the container; `user` is "name:password" (ETCDCTL_USER) or None for none."""
    env = f"ETCDCTL_USER={shlex.quote(user)} " if user else ""
    return host.run(f"{env}etcdctl --endpoints={endpoints} --command-timeout=5s {args}")


def member_names(host, user: str) -> list[str]:
    out = etcdctl(host, "member list -w json", user)
    assert out.rc == 0, out.stderr
    return sorted(m.get("name", "") for m in json.loads(out.stdout)["members"])
