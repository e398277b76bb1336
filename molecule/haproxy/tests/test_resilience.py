"""Drills: what clients see while HAProxy reloads, while an app server dies hard, while an operator
drains a server, and when the PostgreSQL primary is demoted. Request loops are bounded (seconds) and
run from this machine against the load balancer only; figures are shown at the end of the run."""

import json
import socket
import time
from pathlib import Path

from conftest import (
    FIGURES,
    RequestLoop,
    runtime_api,
    server_stats,
    wait_for_status,
    worker_pids,
)
from playbook_runs import run_playbook

testinfra_hosts = ["ansible://hap-lb1"]

ECHO_PATH = "/api/echo"  # not a webhook path: the loops stay clear of the rate limit


def both_app_servers_up(host) -> None:
    for name in ("hap-be1", "hap-be2"):
        wait_for_status(host, "app", name, "UP", timeout=60)


def test_reloads_under_load_fail_no_request(host, lb_ip, ca_file):
    """Three reloads while four clients send requests (two on keep-alive connections, two opening a
    connection per request): every request is answered, the master stays, the workers are new."""
    both_app_servers_up(host)
    master = host.check_output("systemctl show -p MainPID --value haproxy")
    workers_before = worker_pids(host)
    loop = RequestLoop(f"https://{lb_ip}", ca_file, ECHO_PATH, seconds=12, clients=4).start()
    for _ in range(3):
        time.sleep(3)
        assert host.run("systemctl reload haproxy").rc == 0
    loop.join()
    FIGURES.append(f"3 reloads under load: {loop.ok} requests answered, {len(loop.failures)} failed")
    assert loop.failures == [], loop.failures[:10]
    assert loop.ok > 100
    assert host.check_output("systemctl show -p MainPID --value haproxy") == master
    assert worker_pids(host).isdisjoint(workers_before)


def test_kill_9_of_an_app_server_costs_no_request(host, backends, lb_ip, ca_file):
    """kill -9 of hap-be1's app process (its unit does not restart it) while clients send POSTs that
    each take 50 ms on the server, so some are in flight when it dies: HAProxy retries them, and the
    connections refused until the checks mark the server DOWN, on hap-be2."""
    both_app_servers_up(host)
    victim = backends["hap-be1"]
    before = server_stats(host)
    loop = RequestLoop(f"https://{lb_ip}", ca_file, f"{ECHO_PATH}?delay=0.05", seconds=15, clients=4).start()
    try:
        time.sleep(4)
        pid = victim.check_output("systemctl show -p MainPID --value double-app")
        assert int(pid) > 0
        killed_at = time.monotonic()
        victim.check_output(f"kill -9 {pid}")
        marked_down_after = wait_for_status(host, "app", "hap-be1", "DOWN", timeout=20)
        loop.join()
        after = server_stats(host)
    finally:
        loop.join()
        victim.run("systemctl start double-app")
    retried, redispatched = (
        sum(int(after[("app", s)][field]) - int(before[("app", s)][field]) for s in ("hap-be1", "hap-be2"))
        for field in ("wretr", "wredis")
    )
    FIGURES.append(
        f"kill -9 of an app server under load: {loop.ok} requests answered, {len(loop.failures)} failed; "
        f"server DOWN after {marked_down_after:.1f} s; {retried} retries, {redispatched} redispatches"
    )
    assert loop.failures == [], loop.failures[:10]
    assert any(t < killed_at for t in loop.servers.get("hap-be1", [])), "hap-be1 served nothing before"
    assert any(t > killed_at + marked_down_after for t in loop.servers["hap-be2"])
    # HAProxy did retry: the loop met the dead server and never saw it.
    assert redispatched > 0
    both_app_servers_up(host)


def test_a_server_drained_by_hand_gets_no_new_request_even_across_a_reload(host, https):
    """The runtime API commands of the role's notes: drain, then ready again."""
    both_app_servers_up(host)
    runtime_api(host, "set server app/hap-be1 state drain")
    try:
        assert server_stats(host)[("app", "hap-be1")]["status"] == "DRAIN"
        assert {https("GET", "/go/d").headers["X-Backend-Server"] for _ in range(10)} == {"hap-be2"}
        # The drop-in saves the servers' state before a reload; the new workers load it.
        assert host.run("systemctl reload haproxy").rc == 0
        time.sleep(1)
        assert server_stats(host)[("app", "hap-be1")]["status"] == "DRAIN"
        assert {https("GET", "/go/d").headers["X-Backend-Server"] for _ in range(10)} == {"hap-be2"}
    finally:
        runtime_api(host, "set server app/hap-be1 state ready")
    wait_for_status(host, "app", "hap-be1", "UP", timeout=10)
    time.sleep(3)  # slowstart
    assert {https("GET", "/go/d").headers["X-Backend-Server"] for _ in range(20)} == {"hap-be1", "hap-be2"}


def test_deploy_playbooks_can_drain_with_community_general_haproxy(host, https):
    """Rolling deploys take an app server out with community.general.haproxy (backend app, the host's
    inventory_hostname, the role's socket; drained, then disabled) and put it back after."""
    both_app_servers_up(host)
    playbook = Path(__file__).with_name("drain.yml")
    drained = run_playbook(playbook, "-e", json.dumps({"drain_server": "hap-be2", "drain_state": "disabled"}))
    try:
        assert drained.returncode == 0, drained.stdout + drained.stderr
        assert server_stats(host)[("app", "hap-be2")]["status"] == "MAINT"
        assert {https("GET", "/go/m").headers["X-Backend-Server"] for _ in range(10)} == {"hap-be1"}
    finally:
        enable = {"drain_server": "hap-be2", "drain_state": "enabled"}
        enabled = run_playbook(playbook, "-e", json.dumps(enable))
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    assert server_stats(host)[("app", "hap-be2")]["status"].startswith("UP")


def test_sessions_on_a_demoted_postgres_primary_are_cut(host, backends, lb_ip):
    """on-marked-down shutdown-sessions: when Patroni's /primary stops answering 200 on hap-be1, the
    open :5000 session to it is closed by HAProxy, so a client reconnects instead of writing to a
    server that is no longer the primary (the double's own process and sessions stay up)."""
    wait_for_status(host, "pg_primary", "hap-be1", "UP")
    session = socket.create_connection((lb_ip, 5000), timeout=5)
    try:
        reader = session.makefile("rb")
        assert reader.readline().startswith(b"grimbots-test-double host=hap-be1 role=primary")
        backends["hap-be1"].check_output("echo replica > /run/backend-double-role")
        down_after = wait_for_status(host, "pg_primary", "hap-be1", "DOWN", timeout=20)
        session.settimeout(10)
        assert session.recv(100) == b"", "the session to the demoted primary is still open"
        # With no primary, a new session is closed at once.
        with socket.create_connection((lb_ip, 5000), timeout=5) as probe:
            probe.settimeout(10)
            assert probe.recv(100) == b""
    finally:
        session.close()
        backends["hap-be1"].run("rm -f /run/backend-double-role")
    FIGURES.append(f"PostgreSQL primary demoted: marked DOWN and its sessions cut after {down_after:.1f} s")
    wait_for_status(host, "pg_primary", "hap-be1", "UP", timeout=20)


def test_pg_listeners_keep_serving_through_a_reload(lb_ip, host):
    # A long-lived session opened before a reload stays with its old worker and keeps working.
    with socket.create_connection((lb_ip, 5001), timeout=5) as session:
        reader = session.makefile("rb")
        assert b"role=replica" in reader.readline()
        assert host.run("systemctl reload haproxy").rc == 0
        time.sleep(1)
        session.sendall(b"still here\n")
        assert reader.readline() == b"still here\n"
