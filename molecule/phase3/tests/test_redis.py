"""The redis hosts in phase 3: Redis Cluster (cache) with every replica away from its primary, the queue
Redis watched by a Sentinel quorum, and no instance that lets a client in without a password."""

import pytest
from conftest import (
    CLUSTER_PORTS,
    QUEUE_PORT,
    REDIS,
    SENTINEL_PORT,
    SENTINEL_SERVICE,
    cluster_nodes,
    redis_cli,
)


def test_every_slot_is_covered_and_the_cluster_has_three_primaries_and_three_replicas(hosts, lab_vars):
    out = redis_cli(
        hosts[REDIS[0]],
        CLUSTER_PORTS[0],
        "--cluster",
        "check",
        f"127.0.0.1:{CLUSTER_PORTS[0]}",
        password=lab_vars["vault_redis_password"],
    )
    assert "[OK] All 16384 slots covered." in out.stdout, out.stdout + out.stderr
    nodes = cluster_nodes(hosts, lab_vars)
    assert sum("master" in n["flags"] for n in nodes) == 3, nodes
    assert sum("slave" in n["flags"] for n in nodes) == 3, nodes
    assert all(n["state"] == "connected" and "fail" not in n["flags"] for n in nodes), nodes


def test_no_replica_runs_on_its_primarys_host(hosts, lab_vars):
    nodes = cluster_nodes(hosts, lab_vars)
    by_id = {n["id"]: n for n in nodes}
    for replica in (n for n in nodes if "slave" in n["flags"]):
        assert replica["ip"] != by_id[replica["master"]]["ip"], (replica, by_id[replica["master"]])


def test_every_sentinel_names_the_same_primary_and_the_quorum_holds(hosts, addresses, lab_vars):
    password = lab_vars["vault_redis_sentinel_password"]
    primaries = set()
    for name in REDIS:
        out = redis_cli(
            hosts[name],
            SENTINEL_PORT,
            "sentinel",
            "get-master-addr-by-name",
            SENTINEL_SERVICE,
            password=password,
        )
        assert out.rc == 0 and out.stdout.strip(), (name, out.stdout, out.stderr)
        primaries.add(tuple(out.stdout.split()))
        quorum = redis_cli(
            hosts[name], SENTINEL_PORT, "sentinel", "ckquorum", SENTINEL_SERVICE, password=password
        )
        assert quorum.stdout.startswith("OK"), (name, quorum.stdout, quorum.stderr)
    assert len(primaries) == 1, primaries
    ip, port = primaries.pop()
    assert ip in [addresses[name] for name in REDIS] and int(port) == QUEUE_PORT, (ip, port)


@pytest.mark.parametrize("port", [*CLUSTER_PORTS, QUEUE_PORT, SENTINEL_PORT])
def test_a_client_without_the_password_is_refused_by_every_instance(hosts, addresses, port):
    for name in REDIS:
        out = redis_cli(hosts[REDIS[0]], port, "ping", at=addresses[name])
        assert "PONG" not in out.stdout, (name, port, out.stdout)
        assert "NOAUTH" in out.stdout + out.stderr or "auth" in (out.stdout + out.stderr).lower(), (
            name,
            port,
            out.stdout,
            out.stderr,
        )


def test_the_app_user_writes_through_the_cluster_but_cannot_flush_it(hosts, lab_vars):
    r = hosts[REDIS[1]]
    password, user = lab_vars["vault_redis_app_password"], "grimbots"
    assert (
        redis_cli(
            r, CLUSTER_PORTS[0], "-c", "set", "p3:test:key", "v", user=user, password=password
        ).stdout.strip()
        == "OK"
    )
    assert (
        redis_cli(
            r, CLUSTER_PORTS[1], "-c", "get", "p3:test:key", user=user, password=password
        ).stdout.strip()
        == "v"
    )
    flush = redis_cli(r, CLUSTER_PORTS[0], "flushall", user=user, password=password)
    assert "NOPERM" in flush.stdout + flush.stderr, flush.stdout
