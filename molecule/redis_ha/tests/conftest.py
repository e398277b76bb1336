"""Shared facts and helpers of the redis_ha scenario: the lab's variables (molecule.yml), the three
hosts, redis-cli run in a container, clients from this machine, and the figures the drills measure
(shown at the end of the run)."""

import re
import sys
import time
from pathlib import Path

import pytest
import testinfra
from redis.cluster import ClusterNode, RedisCluster

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from scenario_facts import FigureLog, address, redis_cli, scenario_vars

HOSTS = ["rha1", "rha2", "rha3"]
# The role's defaults (roles/redis/defaults/main.yml) that the scenario keeps.
CLUSTER_PORTS = [7000, 7001]
QUEUE_PORT = 6379
SENTINEL_PORT = 26379
SERVICE = "grimbots-queue"
APP_USER = "grimbots"
CONVERGE = SCENARIO / "converge.yml"
# redis-cli --cluster colours its report even when it is not on a terminal.
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Figures measured by the drills, shown at the end of the run.
FIGURES = FigureLog("redis_ha figures")


def pytest_terminal_summary(terminalreporter):
    FIGURES.report(terminalreporter)


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
def sentinel_password(lab_vars) -> str:
    return lab_vars["vault_redis_sentinel_password"]


@pytest.fixture(scope="session")
def hosts() -> dict:
    """testinfra hosts of the group redis, by name (podman backend: commands run in the container)."""
    return {name: testinfra.get_host(f"podman://{name}") for name in HOSTS}


@pytest.fixture(scope="session")
def addresses(hosts) -> dict:
    """Each host's address on the scenario's network, by name."""
    return {name: address(host) for name, host in hosts.items()}


@pytest.fixture(scope="session")
def host_of(addresses) -> dict:
    """Host name by address."""
    return {address: name for name, address in addresses.items()}


def wait_for(what: str, check, timeout: float, interval: float = 0.5):
    """Call check() until it returns something true, for at most `timeout` s; return that value."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s (last answer: {last!r})")


def cluster_nodes(host, admin_password: str, port: int = CLUSTER_PORTS[0]) -> list[dict]:
    """CLUSTER NODES as one dict per node: id, address, port, flags, primary_id, slots."""
    nodes = []
    for line in redis_cli(host, "-p", str(port), "cluster", "nodes", password=admin_password).splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address, port_text = fields[1].split("@")[0].rsplit(":", 1)
        nodes.append(
            {
                "id": fields[0],
                "address": address,
                "port": int(port_text),
                "flags": fields[2].split(","),
                "primary_id": fields[3],
                "slots": [s for s in fields[8:] if not s.startswith("[")],
            }
        )
    return nodes


def cluster_check(host, addresses: dict, admin_password: str) -> str:
    """redis-cli --cluster check through rha1's first instance, without its colour codes."""
    return ANSI.sub(
        "",
        redis_cli(
            host,
            "--cluster",
            "check",
            f"{addresses['rha1']}:{CLUSTER_PORTS[0]}",
            password=admin_password,
            timeout=30,
        ),
    )


def cluster_is_whole(output: str) -> bool:
    return (
        "[OK] All 16384 slots covered." in output
        and "[OK] All nodes agree about slots configuration." in output
        and "[ERR]" not in output
        and "[WARNING]" not in output
    )


def wait_for_whole_cluster(hosts, addresses, admin_password, timeout: float = 120) -> str:
    return wait_for(
        "redis-cli --cluster check clean",
        lambda: (lambda out: out if cluster_is_whole(out) else None)(
            cluster_check(hosts["rha1"], addresses, admin_password)
        ),
        timeout,
        interval=1,
    )


def sentinel_primary(host, sentinel_password: str) -> str | None:
    """The queue primary's address as this host's Sentinel names it."""
    out = redis_cli(
        host,
        "-p",
        str(SENTINEL_PORT),
        "sentinel",
        "get-master-addr-by-name",
        SERVICE,
        password=sentinel_password,
    ).splitlines()
    return out[0] if len(out) == 2 else None


def replication(host, admin_password: str, port: int = QUEUE_PORT) -> dict:
    """INFO replication of an instance as a dict."""
    out = redis_cli(host, "-p", str(port), "info", "replication", password=admin_password)
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line)


def wait_for_healthy_queue(hosts, addresses, admin_password, sentinel_password, timeout: float = 120) -> str:
    """Wait until every Sentinel names one primary, it has the two others as linked replicas, and
    CKQUORUM is OK everywhere; return the primary's address."""

    def healthy():
        named = {sentinel_primary(h, sentinel_password) for h in hosts.values()}
        if len(named) != 1 or None in named:
            return None
        primary = named.pop()
        for name, host in hosts.items():
            info = replication(host, admin_password)
            if addresses[name] == primary:
                if info.get("role") != "master" or info.get("connected_slaves") != str(len(hosts) - 1):
                    return None
            elif (
                info.get("role") != "slave"
                or info.get("master_host") != primary
                or (info.get("master_link_status") != "up")
            ):
                return None
            quorum = redis_cli(
                host, "-p", str(SENTINEL_PORT), "sentinel", "ckquorum", SERVICE, password=sentinel_password
            )
            if not quorum.startswith("OK"):
                return None
        return primary

    return wait_for("a healthy queue Redis under Sentinel", healthy, timeout, interval=1)


@pytest.fixture
def cluster_client(addresses, app_password):
    """A Redis Cluster client from this machine as the app user, as an app server connects."""
    client = RedisCluster(
        startup_nodes=[
            ClusterNode(address, port) for address in addresses.values() for port in CLUSTER_PORTS
        ],
        username=APP_USER,
        password=app_password,
        socket_timeout=2,
        socket_connect_timeout=2,
        decode_responses=True,
    )
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_hosts() -> list[str]:
    """The redis hosts, for molecule/shared/redis_preflight.py's tests."""
    return HOSTS


@pytest.fixture(scope="session")
def redis_admin_password(admin_password) -> str:
    return admin_password


@pytest.fixture(scope="session")
def redis_secrets(admin_password, app_password, sentinel_password) -> list[str]:
    return [admin_password, app_password, sentinel_password]
