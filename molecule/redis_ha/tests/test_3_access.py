"""Who gets in: nobody without a password (cluster ports, the queue Redis, Sentinel), the app user
for its work (through the cluster, and to the queue through Sentinel) but not for admin commands."""

import pytest
import redis
from conftest import APP_USER, CLUSTER_PORTS, QUEUE_PORT, SENTINEL_PORT, SERVICE, redis_cli
from redis.sentinel import Sentinel
from rq import Queue, SimpleWorker

ALL_PORTS = [*CLUSTER_PORTS, QUEUE_PORT, SENTINEL_PORT]


@pytest.mark.parametrize("port", ALL_PORTS)
def test_a_client_without_password_is_refused_everywhere(addresses, port):
    # From this machine, over the network, as any client would connect.
    for address in addresses.values():
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host=address, port=port, socket_timeout=5).ping()
        # A command other than PING is refused too.
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host=address, port=port, socket_timeout=5).execute_command("INFO")


@pytest.mark.parametrize("port", ALL_PORTS)
def test_a_wrong_password_is_refused_everywhere(hosts, addresses, port):
    for address in addresses.values():
        out = redis_cli(
            hosts["rha1"], "-h", address, "-p", str(port), "ping", password="not-the-password-at-all"
        )
        assert "WRONGPASS" in out or "invalid username-password" in out, (address, port, out)


def test_app_user_sets_and_gets_through_the_cluster_with_redis_cli(hosts, addresses, app_password):
    # redis-cli -c follows MOVED redirections: keys of every shard, written through one node and
    # read through another.
    keys = [f"grimbots:test:cli:{n}" for n in range(12)]
    for key in keys:
        out = redis_cli(
            hosts["rha1"],
            "-c",
            "-h",
            addresses["rha1"],
            "-p",
            "7000",
            "set",
            key,
            key,
            user=APP_USER,
            password=app_password,
        )
        assert out == "OK", (key, out)
    for key in keys:
        out = redis_cli(
            hosts["rha2"],
            "-c",
            "-h",
            addresses["rha3"],
            "-p",
            "7001",
            "get",
            key,
            user=APP_USER,
            password=app_password,
        )
        assert out == key, (key, out)


def test_app_user_reaches_every_shard_with_a_cluster_client(cluster_client):
    keys = {f"grimbots:test:client:{n}": str(n) for n in range(200)}
    for key, value in keys.items():
        assert cluster_client.set(key, value, ex=300)
    slots_by_node = {cluster_client.get_node_from_key(key).name for key in keys}
    assert len(slots_by_node) == 3  # the keys landed on all three primaries
    assert {key: cluster_client.get(key) for key in keys} == keys


@pytest.mark.parametrize(
    "command",
    [
        ["flushall"],
        ["flushdb"],
        ["config", "set", "maxmemory", "1"],
        ["cluster", "failover"],
        ["cluster", "reset"],
        ["keys", "*"],
        ["acl", "setuser", "intruder", "on", ">pw", "+@all"],
        ["shutdown", "nosave"],
    ],
)
def test_app_user_cannot_run_admin_commands_on_the_cluster(hosts, app_password, command):
    out = redis_cli(hosts["rha1"], "-c", "-p", "7000", *command, user=APP_USER, password=app_password)
    assert "NOPERM" in out, out


@pytest.mark.parametrize("command", [["flushall"], ["replicaof", "no", "one"], ["config", "rewrite"]])
def test_app_user_cannot_run_admin_commands_on_the_queue(hosts, app_password, command):
    out = redis_cli(hosts["rha2"], "-p", str(QUEUE_PORT), *command, user=APP_USER, password=app_password)
    assert "NOPERM" in out, out


def test_rq_runs_a_job_on_the_primary_found_through_sentinel(addresses, app_password, sentinel_password):
    # As the app connects: ask the Sentinels (their own password) for the primary of grimbots-queue,
    # then log in to it as the app user; a real RQ worker takes the job.
    sentinel = Sentinel(
        [(address, SENTINEL_PORT) for address in addresses.values()],
        sentinel_kwargs={"password": sentinel_password, "socket_timeout": 2},
        username=APP_USER,
        password=app_password,
        socket_timeout=5,
    )
    assert sentinel.discover_master(SERVICE)[0] in addresses.values()
    conn = sentinel.master_for(SERVICE)
    queue = Queue("molecule-ha-check", connection=conn)
    queue.empty()
    job = queue.enqueue("operator.add", 2, 3)
    assert SimpleWorker([queue], connection=conn).work(burst=True)
    assert job.get_status(refresh=True) == "finished" and job.return_value() == 5
    queue.delete(delete_jobs=True)


def test_the_sentinel_refuses_a_client_without_its_own_password(addresses, admin_password):
    # The admin password of the Redis instances is not Sentinel's.
    for address in addresses.values():
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host=address, port=SENTINEL_PORT, password=admin_password, socket_timeout=5).ping()
