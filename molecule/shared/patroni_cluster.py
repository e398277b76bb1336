"""The Patroni cluster of a scenario's postgres hosts (pg1..pg3), as its tests read it: Patroni's REST
API for the members and their roles, psql in a container for SQL.

A scenario's tests/conftest.py imports it after putting molecule/shared on sys.path:

    from patroni_cluster import PG_HOSTS, REST_PORT, cluster, leader_and_replicas, pg, psql, ...
"""

import json
import os
import shlex
import time

import pytest
import testinfra
from scenario_facts import address

PG_HOSTS = ["pg1", "pg2", "pg3"]
REST_PORT = 8008


@pytest.fixture(scope="session")
def pg() -> dict:
    """testinfra hosts of the postgres group, by name (the scenario's inventory). A scenario's conftest
    imports this fixture."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return {name: testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory) for name in PG_HOSTS}


def cluster(host) -> dict:
    """Patroni's /cluster as this host's REST API answers it."""
    out = host.run(f"curl -s -m 5 http://{address(host)}:{REST_PORT}/cluster")
    return json.loads(out.stdout) if out.rc == 0 and out.stdout.startswith("{") else {"members": []}


def leader_and_replicas(pg: dict) -> tuple[str | None, list[dict]]:
    for host in pg.values():
        members = cluster(host)["members"]
        if members:
            leaders = [m["name"] for m in members if m["role"] == "leader" and m["state"] == "running"]
            return (leaders[0] if leaders else None), [m for m in members if m["role"] != "leader"]
    return None, []


def wait_for_healthy_cluster(pg: dict, timeout: float = 180) -> str:
    """Wait until one leader runs and every other member streams; return the leader's name."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        leader, replicas = leader_and_replicas(pg)
        if leader and len(replicas) == len(pg) - 1 and all(r["state"] == "streaming" for r in replicas):
            return leader
        time.sleep(1)
    raise AssertionError(f"no healthy cluster within {timeout} s: {leader_and_replicas(pg)}")


def psql(
    host,
    sql: str,
    dsn: str = "dbname=postgres",
    password: str | None = None,
    user: str = "postgres",
):
    """Run one statement with psql in the container: as the postgres account over the socket when
    no password is given, else with the password in PGPASSWORD. Returns the command's result."""
    env = f"PGPASSWORD={shlex.quote(password)} " if password else ""
    run_as = "" if password else "runuser -u postgres -- "
    command = f"psql -X -A -t -v ON_ERROR_STOP=1 {shlex.quote(dsn)} -U {user} -c {shlex.quote(sql)}"
    return host.run(f"{env}{run_as}timeout 20 {command}")
