"""Redis Cluster as the role leaves it: whole, in the layout it chose, run by systemd."""

import pytest
from conftest import CLUSTER_PORTS, HOSTS, cluster_check, cluster_is_whole, cluster_nodes, redis_cli


def test_cluster_check_covers_every_slot_with_3_primaries_and_3_replicas(hosts, addresses, admin_password):
    out = cluster_check(hosts["rha1"], addresses, admin_password)
    assert cluster_is_whole(out), out
    lines = out.splitlines()
    assert len([line for line in lines if line.startswith("M: ")]) == 3, out
    assert len([line for line in lines if line.startswith("S: ")]) == 3, out


def test_every_instance_sees_the_whole_cluster_in_state_ok(hosts, admin_password):
    for name, host in hosts.items():
        for port in CLUSTER_PORTS:
            info = redis_cli(host, "-p", str(port), "cluster", "info", password=admin_password)
            assert "cluster_state:ok" in info, (name, port, info)
            assert "cluster_known_nodes:6" in info, (name, port, info)


def test_no_replica_shares_a_host_with_its_primary(hosts, admin_password):
    nodes = cluster_nodes(hosts["rha1"], admin_password)
    by_id = {n["id"]: n for n in nodes}
    replicas = [n for n in nodes if "slave" in n["flags"]]
    assert len(replicas) == 3
    for replica in replicas:
        primary = by_id[replica["primary_id"]]
        assert replica["address"] != primary["address"], (replica, primary)


def test_layout_primaries_on_the_first_port_replicas_on_the_next_host(hosts, addresses, admin_password):
    # Shard i: primary on host i port 7000, replica on host i+1 port 7001 (the role's placement, not
    # redis-cli's heuristic).
    nodes = cluster_nodes(hosts["rha1"], admin_password)
    at = {(n["address"], n["port"]): n for n in nodes}
    for i, name in enumerate(HOSTS):
        primary = at[(addresses[name], CLUSTER_PORTS[0])]
        replica = at[(addresses[HOSTS[(i + 1) % len(HOSTS)]], CLUSTER_PORTS[1])]
        assert "master" in primary["flags"] and primary["slots"], primary
        assert "slave" in replica["flags"] and replica["primary_id"] == primary["id"], replica


@pytest.mark.parametrize("port", CLUSTER_PORTS)
def test_cluster_units_run_from_debians_template_with_the_drop_in(hosts, port):
    for host in hosts.values():
        unit = f"redis-server@cluster-{port}.service"
        service = host.service(unit)
        assert service.is_running and service.is_enabled, unit
        show = host.check_output(f"systemctl show {unit} -p Restart -p LimitNOFILE -p FragmentPath")
        assert "Restart=always" in show and "LimitNOFILE=20000" in show, show
        assert "FragmentPath=/usr/lib/systemd/system/redis-server@.service" in show, show
        # Each instance has its own data folder, with the cluster's own record (nodes.conf) in it.
        assert host.file(f"/var/lib/redis/cluster-{port}/nodes.conf").exists
        conf = host.file(f"/etc/redis/redis-cluster-{port}.conf").content_string
        assert "cluster-enabled yes" in conf


def test_cluster_instances_listen_on_loopback_and_the_host_address_only(hosts, addresses):
    for name, host in hosts.items():
        for port in CLUSTER_PORTS:
            for listening in (port, port + 10000):
                out = host.check_output(f"ss -Hltn 'sport = :{listening}'")
                local = {line.split()[3] for line in out.splitlines()}
                assert local == {f"127.0.0.1:{listening}", f"{addresses[name]}:{listening}"}, (name, local)
