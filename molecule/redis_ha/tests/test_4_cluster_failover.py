"""Cluster drill: a primary instance stops; its replica (on the next host) is promoted, the cluster
is whole again, and the stopped instance comes back as a replica. The promotion time is measured."""

import time

from conftest import (
    CLUSTER_PORTS,
    FIGURES,
    cluster_nodes,
    redis_cli,
    replication,
    wait_for,
    wait_for_whole_cluster,
)


def role(host, port, admin_password) -> str:
    out = redis_cli(host, "-p", str(port), "role", password=admin_password)
    return out.splitlines()[0] if out else ""


def test_a_stopped_primary_is_replaced_by_its_replica(hosts, addresses, admin_password, cluster_client):
    wait_for_whole_cluster(hosts, addresses, admin_password)
    # rha2's primary (shard 1); its replica is on rha3, second port.
    victim, port = hosts["rha2"], CLUSTER_PORTS[0]
    successor, successor_port = hosts["rha3"], CLUSTER_PORTS[1]
    assert role(victim, port, admin_password) == "master"
    assert role(successor, successor_port, admin_password) == "slave"
    key = next(
        f"grimbots:test:drill:{n}"
        for n in range(1000)
        if _served_by(cluster_client, f"grimbots:test:drill:{n}", addresses["rha2"], port)
    )
    assert cluster_client.set(key, "before")

    stopped_at = time.monotonic()
    victim.check_output(f"systemctl stop redis-server@cluster-{port}.service")
    wait_for(
        "the replica promoted",
        lambda: role(successor, successor_port, admin_password) == "master",
        timeout=60,
        interval=0.2,
    )
    promoted = time.monotonic() - stopped_at
    wait_for(
        "cluster_state:ok on the other nodes",
        lambda: (
            "cluster_state:ok"
            in redis_cli(hosts["rha1"], "-p", "7000", "cluster", "info", password=admin_password)
        ),
        timeout=60,
        interval=0.2,
    )
    state_ok = time.monotonic() - stopped_at
    # The shard still serves its keys, written before the stop.
    assert cluster_client.get(key) == "before"
    assert cluster_client.set(key, "after")
    FIGURES.append(
        f"cluster: primary rha2:{port} stopped -> replica rha3:{successor_port} promoted after "
        f"{promoted:.1f} s, cluster_state ok after {state_ok:.1f} s (cluster-node-timeout 5000 ms)"
    )
    assert promoted < 60

    # Back: it rejoins as a replica of the new primary, on another host.
    victim.check_output(f"systemctl start redis-server@cluster-{port}.service")
    wait_for(
        "the old primary back as a replica",
        lambda: role(victim, port, admin_password) == "slave",
        timeout=60,
    )
    wait_for_whole_cluster(hosts, addresses, admin_password)
    nodes = {(n["address"], n["port"]): n for n in cluster_nodes(hosts["rha1"], admin_password)}
    old = nodes[(addresses["rha2"], port)]
    assert old["primary_id"] == nodes[(addresses["rha3"], successor_port)]["id"]
    # Its full resynchronisation from the new primary takes a moment after it says "slave".
    wait_for(
        "the old primary's replication link up",
        lambda: replication(victim, admin_password, port).get("master_link_status") == "up",
        timeout=60,
    )

    # Restore the layout (as the role's rolling restart does): the old primary takes its shard back.
    assert redis_cli(victim, "-p", str(port), "cluster", "failover", password=admin_password) == "OK"
    wait_for("the layout restored", lambda: role(victim, port, admin_password) == "master", timeout=60)
    wait_for_whole_cluster(hosts, addresses, admin_password)
    assert cluster_client.get(key) == "after"


def _served_by(client, key: str, address: str, port: int) -> bool:
    node = client.get_node_from_key(key)
    return node.host == address and node.port == port
