"""The queue Redis under Sentinel as the role leaves it: one primary (the first host of the group on
a fresh deploy), two linked replicas, three Sentinels that agree and can reach a quorum."""

import time

from conftest import QUEUE_PORT, SENTINEL_PORT, SERVICE, redis_cli, replication, sentinel_primary, wait_for


def test_every_sentinel_names_the_same_primary_the_first_host(hosts, addresses, sentinel_password):
    named = {name: sentinel_primary(host, sentinel_password) for name, host in hosts.items()}
    assert set(named.values()) == {addresses["rha1"]}, named


def test_ckquorum_is_ok_on_every_sentinel(hosts, sentinel_password):
    for name, host in hosts.items():
        out = redis_cli(
            host, "-p", str(SENTINEL_PORT), "sentinel", "ckquorum", SERVICE, password=sentinel_password
        )
        assert out.startswith("OK 3 usable Sentinels"), (name, out)


def test_each_sentinel_knows_two_replicas_and_two_other_sentinels(hosts, sentinel_password):
    for name, host in hosts.items():
        out = redis_cli(
            host, "-p", str(SENTINEL_PORT), "sentinel", "master", SERVICE, password=sentinel_password
        )
        fields = out.splitlines()
        master = dict(zip(fields[0::2], fields[1::2], strict=True))
        assert master["flags"] == "master", (name, master)
        assert master["num-slaves"] == "2", (name, master)
        assert master["num-other-sentinels"] == "2", (name, master)
        assert master["quorum"] == "2", (name, master)


def test_replicas_are_linked_to_the_primary(hosts, addresses, admin_password):
    primary = replication(hosts["rha1"], admin_password)
    assert primary["role"] == "master" and primary["connected_slaves"] == "2", primary
    for name in ("rha2", "rha3"):
        info = replication(hosts[name], admin_password)
        assert info["role"] == "slave", (name, info)
        assert info["master_host"] == addresses["rha1"] and info["master_link_status"] == "up", (name, info)


def test_a_write_on_the_primary_reaches_every_replica(hosts, admin_password):
    value = f"written-{time.time()}"
    assert redis_cli(hosts["rha1"], "set", "grimbots:test:replicated", value, password=admin_password) == "OK"
    for name in ("rha2", "rha3"):
        wait_for(
            f"the write on {name}",
            lambda h=hosts[name]: (
                redis_cli(h, "get", "grimbots:test:replicated", password=admin_password) == value
            ),
            timeout=10,
        )


def test_sentinel_runs_from_its_own_folder_with_the_drop_in(hosts):
    for name, host in hosts.items():
        service = host.service("redis-sentinel.service")
        assert service.is_running and service.is_enabled, name
        show = host.check_output("systemctl show redis-sentinel -p Restart -p LimitNOFILE -p ExecStart")
        assert "Restart=always" in show and "LimitNOFILE=20000" in show, show
        assert "/etc/redis/sentinel/sentinel.conf" in show, show
        # Sentinel's file is Sentinel's: it has written its id and state into it.
        conf = host.file("/etc/redis/sentinel/sentinel.conf").content_string
        assert "sentinel myid " in conf and f"sentinel monitor {SERVICE} " in conf


def test_the_queue_redis_cannot_rewrite_its_config_files(hosts, admin_password):
    # Sentinel's CONFIG REWRITE after a failover fails on purpose: the role's files stay the role's
    # (the role writes `replicaof` from the Sentinels' answer).
    host = hosts["rha2"]
    before = host.file("/etc/redis/redis.conf").sha256sum
    out = redis_cli(host, "-p", str(QUEUE_PORT), "config", "rewrite", password=admin_password)
    assert out.startswith("ERR"), out
    assert host.file("/etc/redis/redis.conf").sha256sum == before
