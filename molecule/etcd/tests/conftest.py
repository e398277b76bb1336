"""Shared facts of the scenario: the variables molecule.yml gives the role, the members, and etcdctl run in
a container with or without credentials (always in the environment, never on the command line)."""

import json
import shlex
import sys
from pathlib import Path

import pytest
import testinfra
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from podman_host import host  # noqa: F401

FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("etcd figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    config = yaml.safe_load((SCENARIO / "molecule.yml").read_text())
    return config["provisioner"]["inventory"]["group_vars"]["all"]


@pytest.fixture(scope="session")
def nodes() -> dict:
    """testinfra hosts of every platform, by name."""
    return {f"etcd{n}": testinfra.get_host(f"podman://etcd{n}") for n in range(1, 5)}


def address(host) -> str:
    route = host.check_output("ip -4 -o route get 1.1.1.1").split()
    return route[route.index("src") + 1]


def etcdctl(host, args: str, user: str | None = None, endpoints: str = "http://127.0.0.1:2379"):
    """`etcdctl <args>` in the container; `user` is "name:password" (ETCDCTL_USER) or None for none."""
    env = f"ETCDCTL_USER={shlex.quote(user)} " if user else ""
    return host.run(f"{env}etcdctl --endpoints={endpoints} --command-timeout=5s {args}")


def member_names(host, user: str) -> list[str]:
    out = etcdctl(host, "member list -w json", user)
    assert out.rc == 0, out.stderr
    return sorted(m.get("name", "") for m in json.loads(out.stdout)["members"])
