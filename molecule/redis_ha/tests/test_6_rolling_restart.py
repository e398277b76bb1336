"""Rolling restart: a re-run with a changed setting restarts every cluster instance, the queue Redis
and the Sentinels one at a time (cluster primaries and the queue primary after a failover), while a
client writes through the cluster without pause. The cluster stays whole, the writes go through,
the Sentinels keep their identity, and a second run with the same setting changes nothing."""

import json
import threading
import time

from conftest import (
    CLUSTER_PORTS,
    CONVERGE,
    FIGURES,
    HOSTS,
    SENTINEL_PORT,
    SERVICE,
    cluster_nodes,
    redis_cli,
    wait_for_healthy_queue,
    wait_for_whole_cluster,
)
from playbook_runs import run_playbook

# maxclients is in every instance's redis.conf (a restart of all 9 Redis instances); loglevel also
# in Sentinel's settings (a rewrite of Sentinel's file that keeps its state, and a restart).
CHANGE = {"redis_maxclients": 9000, "redis_loglevel": "verbose"}


class Writer(threading.Thread):
    """SET a new key through the cluster every 10 ms until stopped (at most 30 min); count failures."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.stop = threading.Event()
        self.ok = 0
        self.failed = 0
        self.errors: list[str] = []
        self.written: list[str] = []

    def run(self):
        deadline = time.monotonic() + 1800
        n = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            key = f"grimbots:test:rolling:{n}"
            try:
                self.client.set(key, n, ex=3600)
                self.ok += 1
                self.written.append(key)
            except Exception as error:  # every failure counts, whatever its kind
                self.failed += 1
                if len(self.errors) < 10:
                    self.errors.append(repr(error))
            n += 1
            time.sleep(0.01)


def sentinel_ids(hosts, sentinel_password) -> dict:
    ids = {}
    for name, host in hosts.items():
        out = redis_cli(host, "-p", str(SENTINEL_PORT), "sentinel", "myid", password=sentinel_password)
        ids[name] = out
    return ids


def test_rolling_restart_keeps_the_cluster_whole_under_writes(
    hosts, addresses, admin_password, sentinel_password, cluster_client
):
    wait_for_whole_cluster(hosts, addresses, admin_password)
    wait_for_healthy_queue(hosts, addresses, admin_password, sentinel_password)
    ids_before = sentinel_ids(hosts, sentinel_password)
    pids_before = {
        (name, port): host.check_output(f"systemctl show -p MainPID --value redis-server@cluster-{port}")
        for name, host in hosts.items()
        for port in CLUSTER_PORTS
    }

    writer = Writer(cluster_client)
    writer.start()
    started = time.monotonic()
    result = run_playbook(CONVERGE, "-e", json.dumps(CHANGE), timeout=2400)
    duration = time.monotonic() - started
    writer.stop.set()
    writer.join(timeout=30)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

    total = writer.ok + writer.failed
    share = 100 * writer.failed / max(total, 1)
    FIGURES.append(
        f"rolling restart (9 Redis instances + 3 Sentinels, playbook {duration:.0f} s): {total} writes "
        f"through the cluster every 10 ms, {writer.failed} failed ({share:.2f} %) "
        f"{writer.errors[:3]}"
    )
    # Every instance was restarted and runs the new setting.
    for (name, port), pid in pids_before.items():
        host = hosts[name]
        assert host.check_output(f"systemctl show -p MainPID --value redis-server@cluster-{port}") != pid
        assert (
            redis_cli(
                host, "-p", str(port), "config", "get", "maxclients", password=admin_password
            ).splitlines()[1]
            == "9000"
        )
    # The cluster is whole, in the role's layout (primaries took their shards back).
    out = wait_for_whole_cluster(hosts, addresses, admin_password)
    assert len([line for line in out.splitlines() if line.startswith("M: ")]) == 3, out
    nodes = {(n["address"], n["port"]): n for n in cluster_nodes(hosts["rha1"], admin_password)}
    for name in HOSTS:
        assert "master" in nodes[(addresses[name], CLUSTER_PORTS[0])]["flags"]
    # Clients kept writing: the client's own retries (MOVED, reconnects) hide the failovers.
    assert total > 100
    assert writer.failed <= total * 0.01, writer.errors
    missing = [
        key
        for key in writer.written[:: max(1, len(writer.written) // 500)]
        if cluster_client.get(key) is None
    ]
    assert not missing, missing[:5]

    # Sentinels: restarted with their file rewritten, they kept their identity (no ghost Sentinel in
    # the others' lists) and still reach the quorum.
    assert sentinel_ids(hosts, sentinel_password) == ids_before
    wait_for_healthy_queue(hosts, addresses, admin_password, sentinel_password)
    for name, host in hosts.items():
        fields = redis_cli(
            host, "-p", str(SENTINEL_PORT), "sentinel", "master", SERVICE, password=sentinel_password
        )
        master = dict(zip(fields.splitlines()[0::2], fields.splitlines()[1::2], strict=True))
        assert master["num-other-sentinels"] == "2", (name, master)

    # The same setting again: nothing to do (the role does not fight Sentinel's rewrites).
    again = run_playbook(CONVERGE, "-e", json.dumps(CHANGE), timeout=1800)
    assert again.returncode == 0, again.stdout[-4000:]
    recap = [
        line for line in again.stdout.splitlines() if line.startswith(tuple(HOSTS)) and "changed=" in line
    ]
    assert recap and all(" changed=0 " in line for line in recap), recap
