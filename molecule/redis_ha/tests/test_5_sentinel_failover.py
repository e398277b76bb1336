"""Sentinel drill: the queue primary's redis-server stops; the Sentinels promote a replica within a
bounded time (measured). Then the converge playbook runs again, as an operator would after the
incident: it must keep the new primary (not demote it back to the inventory's first host) and bring
the old primary back as its replica, with the data written meanwhile."""

import time

from conftest import (
    CONVERGE,
    FIGURES,
    QUEUE_PORT,
    SENTINEL_PORT,
    SERVICE,
    redis_cli,
    replication,
    sentinel_primary,
    wait_for,
    wait_for_healthy_queue,
)
from playbook_runs import run_playbook


def test_sentinel_failover_then_a_rerun_keeps_the_new_primary(
    hosts, addresses, host_of, admin_password, sentinel_password
):
    primary = wait_for_healthy_queue(hosts, addresses, admin_password, sentinel_password)
    old_name = host_of[primary]
    old = hosts[old_name]
    others = [name for name in hosts if name != old_name]

    # systemctl stop, not kill -9: systemd restarts a killed Redis within about a second
    # (Restart=always, RestartSec=1), well inside down-after-milliseconds (5 s), so a kill alone
    # never causes a failover; a stop stands for a host or process that stays down.
    stopped_at = time.monotonic()
    old.check_output("systemctl stop redis-server.service")

    def new_primary():
        named = {sentinel_primary(hosts[name], sentinel_password) for name in others}
        if len(named) == 1 and primary not in named and None not in named:
            candidate = named.pop()
            if replication(hosts[host_of[candidate]], admin_password).get("role") == "master":
                return candidate
        return None

    promoted = wait_for("a replica promoted by the Sentinels", new_primary, timeout=90, interval=0.2)
    elapsed = time.monotonic() - stopped_at
    new_name = host_of[promoted]
    FIGURES.append(
        f"sentinel: queue primary {old_name} stopped -> {new_name} promoted and named by the Sentinels after "
        f"{elapsed:.1f} s (down-after-milliseconds 5000, quorum 2)"
    )
    assert elapsed < 60

    # Writes go on on the new primary while the old one is down.
    assert (
        redis_cli(hosts[new_name], "set", "grimbots:test:after-failover", "kept", password=admin_password)
        == "OK"
    )

    # The operator's next run: the role asks the Sentinels and follows them.
    result = run_playbook(CONVERGE, timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"Queue primary: {promoted}:{QUEUE_PORT} (from the Sentinels)" in result.stdout, result.stdout[
        -4000:
    ]

    healthy = wait_for_healthy_queue(hosts, addresses, admin_password, sentinel_password)
    assert healthy == promoted  # not demoted back to the first host of the group
    info = replication(old, admin_password)
    assert (
        info["role"] == "slave" and info["master_host"] == promoted and info["master_link_status"] == "up"
    ), info
    wait_for(
        "the write made during the outage on the old primary",
        lambda: redis_cli(old, "get", "grimbots:test:after-failover", password=admin_password) == "kept",
        timeout=10,
    )
    # The role wrote the Sentinels' answer where a restart reads it.
    assert (
        f"replicaof {promoted} {QUEUE_PORT}" in old.file("/etc/redis/redis-replication.conf").content_string
    )
    new_file = hosts[new_name].file("/etc/redis/redis-replication.conf").content_string
    assert not [line for line in new_file.splitlines() if line.startswith("replicaof")], new_file
    for host in hosts.values():
        out = redis_cli(
            host, "-p", str(SENTINEL_PORT), "sentinel", "ckquorum", SERVICE, password=sentinel_password
        )
        assert out.startswith("OK"), out
