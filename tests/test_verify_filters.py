"""What the verify role reads out of command output: roles/verify/filter_plugins/verify_parse.py, and the
Redis parsers it shares with the redis role (roles/grimbots/filter_plugins/grimbots_redis.py)."""

import importlib.util

from conftest import ROOT


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vp = load(ROOT / "roles/verify/filter_plugins/verify_parse.py")
redis = load(ROOT / "roles/grimbots/filter_plugins/grimbots_redis.py")

SYSTEMCTL_SHOW = """Id=redis-server.service
LoadState=loaded
ActiveState=active
SubState=running
Result=success
NRestarts=0
ActiveEnterTimestamp=@1764679000

Id=redis-sentinel.service
LoadState=not-found
ActiveState=inactive
SubState=dead
Result=success
NRestarts=
ActiveEnterTimestamp=
"""

SS = """LISTEN 0 511 10.231.0.31:6379 0.0.0.0:*
LISTEN 0 511 127.0.0.1:6379 0.0.0.0:*
LISTEN 0 4096 [::]:22 [::]:*
LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:*
garbage
"""

# CLUSTER INFO then CLUSTER NODES, as redis-cli prints both answers to one stdout.
CLUSTER = """cluster_state:ok
cluster_slots_assigned:16384
cluster_known_nodes:6
aaa 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
bbb 10.0.0.2:7000@17000 master - 0 0 2 connected 5461-10922
ccc 10.0.0.3:7000@17000 master - 0 0 3 connected 10923-16383
ddd 10.0.0.2:7001@17001 slave aaa 0 0 1 connected
eee 10.0.0.3:7001@17001 slave bbb 0 0 2 connected
fff 10.0.0.1:7001@17001 slave ccc 0 0 3 connected
"""


def test_systemctl_show_keys_units_by_id_and_keeps_not_found():
    units = vp.systemctl_show(SYSTEMCTL_SHOW)
    assert set(units) == {"redis-server.service", "redis-sentinel.service"}
    assert units["redis-server.service"]["ActiveEnterTimestamp"] == "@1764679000"
    assert units["redis-sentinel.service"]["LoadState"] == "not-found"
    assert vp.systemctl_show("") == {}


def test_ss_listening_maps_ports_to_addresses():
    ports = vp.ss_listening(SS.splitlines())
    assert ports["6379"] == ["10.231.0.31", "127.0.0.1"]
    assert ports["22"] == ["::"]
    assert ports["53"] == ["127.0.0.53"]
    assert "garbage" not in str(ports)


def test_redis_info_reads_key_value_lines_only():
    info = redis.redis_info(
        "PONG\r\n# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_link_status:up\r\n"
    )
    assert info == {"role": "slave", "master_host": "10.0.0.1", "master_link_status": "up"}
    assert redis.redis_info(None) == {}
    assert redis.redis_info(CLUSTER)["cluster_slots_assigned"] == "16384"


def test_cluster_nodes_parse_and_healthy_cluster_has_no_problem():
    nodes = redis.redis_cluster_nodes(CLUSTER.splitlines())
    assert len(nodes) == 6
    assert nodes[0] == {
        "id": "aaa",
        "address": "10.0.0.1",
        "port": 7000,
        "endpoint": "10.0.0.1:7000",
        "flags": ["myself", "master"],
        "primary_id": "-",
        "link": "connected",
        "slots": ["0-5460"],
    }
    assert nodes[3]["primary_id"] == "aaa"
    assert vp.cluster_problems(nodes) == []


def test_cluster_nodes_keep_owned_slots_and_drop_migration_markers():
    line = (
        "aaa 10.0.0.1:7000@17000,redis1 myself,master - 0 0 1 connected 0-5460 7000 [5461-<-bbb] [42->-ccc]"
    )
    (node,) = redis.redis_cluster_nodes([line, "", "not a node line", "x y:z@1 master - 0 0 1 connected"])
    assert node["endpoint"] == "10.0.0.1:7000"
    assert node["slots"] == ["0-5460", "7000"]


def test_cluster_problems_name_each_fault():
    lines = CLUSTER.replace("fff 10.0.0.1:7001@17001 slave ccc", "fff 10.0.0.3:7002@17002 slave ccc")
    lines = lines.replace(
        "eee 10.0.0.3:7001@17001 slave bbb 0 0 2 connected",
        "eee 10.0.0.3:7001@17001 slave,fail bbb 0 0 2 disconnected",
    )
    lines = lines.replace("ddd 10.0.0.2:7001@17001 slave aaa 0 0 1 connected\n", "")
    problems = vp.cluster_problems(redis.redis_cluster_nodes(lines.splitlines()))
    assert "10.0.0.3:7001 unreachable (slave,fail, disconnected)" in problems
    assert "replica 10.0.0.3:7002 on the host of its primary 10.0.0.3:7000" in problems
    assert "primary 10.0.0.1:7000 has no replica" in problems
    assert len(problems) == 3


def test_duration_text_steps():
    assert [vp.duration_text(s) for s in (-5, 59, 119, 120, 7199, 7200, 172799, 172800)] == [
        "0 s",
        "59 s",
        "119 s",
        "2 min",
        "119 min",
        "2 h",
        "47 h",
        "2 d",
    ]


def test_unit_verdicts():
    units = vp.systemctl_show(SYSTEMCTL_SHOW)
    now = 1764679000 + 3600
    assert vp.unit_verdict(units["redis-server.service"], now, 3, 600) == {
        "result": "ok",
        "detail": "active (running) for 60 min",
    }
    assert (
        vp.unit_verdict(units["redis-sentinel.service"], now, 3, 600)["detail"]
        == "not installed (no unit file)"
    )
    assert vp.unit_verdict(None, now, 3, 600)["result"] == "FAIL"
    failed = {
        "LoadState": "loaded",
        "ActiveState": "failed",
        "SubState": "failed",
        "Result": "exit-code",
        "NRestarts": "2",
    }
    assert vp.unit_verdict(failed, now, 3, 600) == {
        "result": "FAIL",
        "detail": "failed (failed, result exit-code), restarted 2 times by systemd",
    }


def test_flapping_is_many_restarts_and_a_short_uptime():
    unit = {
        "LoadState": "loaded",
        "ActiveState": "active",
        "SubState": "running",
        "NRestarts": "5",
        "ActiveEnterTimestamp": "@1000",
    }
    assert vp.unit_verdict(unit, 1030, 3, 600) == {
        "result": "FAIL",
        "detail": "flapping: restarted 5 times by systemd, up only 30 s since the last one",
    }
    # Restarted as often, but up longer than the window: ok, with the restarts in the detail.
    assert vp.unit_verdict(unit, 1000 + 601, 3, 600) == {
        "result": "ok",
        "detail": "active (running) for 10 min, restarted 5 times by systemd",
    }
    # Up briefly, but not more restarts than allowed.
    assert vp.unit_verdict(dict(unit, NRestarts="3"), 1030, 3, 600)["result"] == "ok"


def command(stdout="", stderr="", rc=0, msg=None):
    """A command result as Ansible registers it."""
    result = {"stdout": stdout, "stdout_lines": stdout.splitlines(), "stderr": stderr, "rc": rc}
    return dict(result, msg=msg) if msg else result


def ping_row(stdout, **kwargs):
    return vp.redis_ping_row(command(stdout, **kwargs), redis.redis_info(stdout), 6379)


def test_redis_ping_row_primary_replica_and_faults():
    primary = ping_row("PONG\n# Replication\nrole:master\nconnected_slaves:2\n")
    assert primary == {
        "tier": "redis",
        "check": "redis :6379 PING",
        "result": "ok",
        "detail": "PONG, primary with 2 replicas",
    }
    replica = "PONG\nrole:slave\nmaster_host:10.0.0.1\nmaster_port:6379\nmaster_link_status:{}\n"
    assert ping_row(replica.format("up"))["detail"] == "PONG, replica of 10.0.0.1:6379, link up"
    assert ping_row(replica.format("up"))["result"] == "ok"
    assert ping_row(replica.format("down"))["result"] == "FAIL"
    refused = ping_row("", stderr="Could not connect to Redis at 127.0.0.1:6379: Connection refused", rc=1)
    assert refused["result"] == "FAIL"
    assert refused["detail"] == "no PONG: Could not connect to Redis at 127.0.0.1:6379: Connection refused"
    assert ping_row("NOAUTH Authentication required.")["detail"] == "no PONG: NOAUTH Authentication required."
    assert ping_row("PONG\n") == {
        "tier": "redis",
        "check": "redis :6379 PING",
        "result": "FAIL",
        "detail": "PONG, but INFO replication did not answer",
    }


def test_answer_text_joins_and_cuts():
    assert vp.answer_text(None) == ""
    assert vp.answer_text({"stdout": "a\nb", "stderr": " c ", "msg": "non-zero return code"}) == (
        "a b c non-zero return code"
    )
    long = vp.answer_text({"stderr": "x" * 500}, limit=50)
    assert len(long) == 50 and long.endswith("...")


def cluster_rows(outputs, ports=(7000, 7001)):
    results = [command(out) for out in outputs]
    infos = [redis.redis_info(out) for out in outputs]
    views = [redis.redis_cluster_nodes(out.splitlines()) for out in outputs]
    return vp.cluster_rows(results, list(ports), infos, views, 16384, "no instance here")


def test_cluster_rows_healthy():
    # The same cluster seen from the replica on :7001.
    other = CLUSTER.replace("myself,master", "master").replace(
        "fff 10.0.0.1:7001@17001 slave", "fff 10.0.0.1:7001@17001 myself,slave"
    )
    rows = cluster_rows([CLUSTER, other])
    assert [(row["check"], row["result"]) for row in rows] == [
        ("redis cluster :7000", "ok"),
        ("redis cluster :7001", "ok"),
        ("redis cluster nodes", "ok"),
    ]
    assert rows[0]["detail"] == "cluster_state:ok, 16384/16384 slots assigned, primary, 6 nodes known"
    assert rows[1]["detail"].endswith(", replica, 6 nodes known")
    assert rows[2]["detail"] == (
        "3 primaries, 3 replicas, seen from :7000, every replica on another host than its primary"
    )


def test_cluster_rows_name_each_fault():
    # No local instance at all: one row saying why one was expected.
    assert vp.cluster_rows([], [], [], [], 16384, "this host is in the redis group, but no conf") == [
        {
            "tier": "redis",
            "check": "redis cluster",
            "result": "FAIL",
            "detail": "this host is in the redis group, but no conf",
        }
    ]
    down = "cluster_state:fail\ncluster_slots_assigned:10923\n" + CLUSTER.split("\n", 3)[3].replace(
        "bbb 10.0.0.2:7000@17000 master", "bbb 10.0.0.2:7000@17000 master,fail"
    )
    rows = cluster_rows([down, ""], ports=(7000, 7001))
    assert rows[0]["result"] == "FAIL"
    assert rows[0]["detail"].startswith("cluster_state:fail, 10923/16384 slots assigned, primary")
    assert rows[1] == {
        "tier": "redis",
        "check": "redis cluster :7001",
        "result": "FAIL",
        "detail": "no answer: ",
    }
    assert rows[2]["result"] == "FAIL"
    assert rows[2]["detail"].startswith("10.0.0.2:7000 unreachable (master,fail, connected); 3 primaries")
    # The first instance gave no CLUSTER NODES answer: the shape cannot be judged.
    rows = cluster_rows(["cluster_state:ok\ncluster_slots_assigned:16384\n"], ports=(7000,))
    assert rows[-1] == {
        "tier": "redis",
        "check": "redis cluster nodes",
        "result": "FAIL",
        "detail": "no CLUSTER NODES answer from :7000",
    }


def test_sentinel_primary_and_row():
    lookup = command("10.0.0.1\n6379\n")
    assert vp.sentinel_primary(lookup) == "10.0.0.1:6379"
    assert vp.sentinel_primary(command("", rc=1)) == ""
    assert vp.sentinel_primary(command("ERR No such master with that name")) == ""
    ok = command("OK 3 usable Sentinels. Quorum and failover authorization can be reached")
    peers = {"redis2": "10.0.0.1:6379", "redis3": ""}
    assert vp.sentinel_row("10.0.0.1:6379", lookup, ok, peers, "grimbots-queue") == {
        "tier": "redis",
        "check": "sentinel grimbots-queue",
        "result": "ok",
        "detail": "primary 10.0.0.1:6379, named by 2 Sentinels, CKQUORUM OK",
    }
    split = vp.sentinel_row("10.0.0.1:6379", lookup, ok, {"redis2": "10.0.0.2:6379"}, "grimbots-queue")
    assert split["result"] == "FAIL"
    assert (
        split["detail"]
        == "redis2's Sentinel names 10.0.0.2:6379; primary 10.0.0.1:6379, named by 1 Sentinels"
    )
    no_quorum = command("NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the majority")
    lost = vp.sentinel_row("", command("", stderr="Connection refused", rc=1), no_quorum, {}, "q")
    assert lost["result"] == "FAIL"
    assert lost["detail"] == (
        "names no primary for q: Connection refused; CKQUORUM: NOQUORUM 1 usable Sentinels. Not enough "
        "available Sentinels to reach the majority; primary ?, named by 0 Sentinels"
    )


def cluster_answer(*members):
    return {"status": 200, "url": "http://10.0.0.7:8008/cluster", "json": {"members": list(members)}}


LEADER = {"name": "pg1", "role": "leader", "state": "running"}
REFUSED = "<urlopen error [Errno 111] Connection refused>"


def test_patroni_row_healthy_and_each_fault():
    replicas = [
        {"name": "pg2", "role": "replica", "state": "streaming", "lag": 0},
        {"name": "pg3", "role": "sync_standby", "state": "streaming", "lag": 120},
    ]
    hosts = ["pg1", "pg2", "pg3"]
    assert vp.patroni_row(cluster_answer(LEADER, *replicas), hosts, 1048576) == {
        "tier": "postgres",
        "check": "patroni cluster (GET /cluster)",
        "result": "ok",
        "detail": "pg1 leader running, pg2 streaming lag 0 B, pg3 streaming lag 120 B",
    }
    lagging = dict(replicas[1], lag=2000000)
    stopped = {"name": "pg2", "role": "replica", "state": "stopped"}
    row = vp.patroni_row(cluster_answer(LEADER, stopped, lagging), hosts, 1048576)
    assert row["result"] == "FAIL"
    assert row["detail"] == (
        "pg2 is stopped, not streaming; pg3 lags 2000000 B (limit 1048576 B): "
        "pg1 leader running, pg2 stopped lag unknown, pg3 streaming lag 2000000 B"
    )
    no_leader = vp.patroni_row(cluster_answer(*replicas), hosts, 1048576)
    assert no_leader["detail"].startswith(
        "0 leaders (), expected 1; 2 members for 3 postgres hosts, missing pg1: "
    )
    refused = {
        "status": -1,
        "url": "http://10.0.0.7:8008/cluster",
        "msg": "Status code was -1 and not [200]: Request failed: " + REFUSED,
    }
    assert vp.patroni_row(refused, hosts, 1048576) == {
        "tier": "postgres",
        "check": "patroni cluster (GET /cluster)",
        "result": "FAIL",
        "detail": "no answer from http://10.0.0.7:8008/cluster: " + REFUSED,
    }


def test_etcd_rows_healthy_and_faults():
    health = command("http://10.0.0.7:2379 is healthy: successfully committed proposal: took = 2.1ms")
    listing = command('{"header": {}, "members": [{"name": "pg2"}, {"name": "pg1"}, {"name": "pg3"}]}')
    rows = vp.etcd_rows(health, listing, ["pg1", "pg2", "pg3"], "postgres")
    assert rows == [
        {
            "tier": "postgres",
            "check": "etcd endpoint health",
            "result": "ok",
            "detail": "http://10.0.0.7:2379 is healthy: successfully committed proposal: took = 2.1ms",
        },
        {
            "tier": "postgres",
            "check": "etcd members",
            "result": "ok",
            "detail": "3 members (pg1, pg2, pg3) for the 3 hosts of group postgres",
        },
    ]
    two = command('{"members": [{"name": "pg1"}, {"name": "pg2"}]}')
    assert vp.etcd_rows(health, two, ["pg1", "pg2", "pg3"], "postgres")[1]["result"] == "FAIL"
    unhealthy = command(
        "",
        stderr='{"level":"warn","msg":"retrying of unary invoker failed"}\n'
        "http://10.0.0.7:2379 is unhealthy: failed to commit proposal: context deadline exceeded",
        rc=1,
    )
    unhealthy["stderr_lines"] = unhealthy["stderr"].splitlines()
    refused = command("", stderr="Error: context deadline exceeded", rc=1)
    rows = vp.etcd_rows(unhealthy, refused, ["pg1", "pg2", "pg3"], "postgres")
    assert rows[0]["result"] == "FAIL"
    assert rows[0]["detail"] == (
        "http://10.0.0.7:2379 is unhealthy: failed to commit proposal: context deadline exceeded"
    )
    assert rows[1] == {
        "tier": "postgres",
        "check": "etcd members",
        "result": "FAIL",
        "detail": "no member list: Error: context deadline exceeded",
    }


def health_answer(status=200, body_status="healthy", workers=None, **checks):
    rq = {"status": "ok", "queues": {queue: {"workers": n} for queue, n in (workers or {}).items()}}
    body = {"status": body_status, "checks": {"database": {"status": "ok"}, **checks, "rq_workers": rq}}
    return {"status": status, "url": "http://10.0.0.5:8000/health", "json": body}


def test_app_rows_sum_the_workers_of_every_app_host():
    expected = [{"default": 2, "webhooks": 1}, {"default": 2, "webhooks": 1}]
    rows = vp.app_rows(health_answer(workers={"default": 4, "webhooks": 2}), expected)
    assert rows == [
        {
            "tier": "app",
            "check": "/health",
            "result": "ok",
            "detail": "200 healthy (database ok, rq_workers ok)",
        },
        {
            "tier": "app",
            "check": "rq workers per queue",
            "result": "ok",
            "detail": "default 4/4, webhooks 2/2 (registered/expected on all app hosts)",
        },
    ]
    short = vp.app_rows(health_answer(workers={"default": 4, "webhooks": 1}), expected)[1]
    assert short["result"] == "FAIL"
    assert short["detail"].startswith("too few workers on webhooks: default 4/4, webhooks 1/2")


def test_app_rows_unhealthy_and_no_answer():
    sick = health_answer(
        503, "unhealthy", workers={"default": 2}, redis={"status": "error", "error": "timeout"}
    )
    rows = vp.app_rows(sick, [{"default": 2}])
    assert rows[0] == {
        "tier": "app",
        "check": "/health",
        "result": "FAIL",
        "detail": "503 unhealthy (database ok, redis error: timeout, rq_workers ok)",
    }
    assert rows[1]["result"] == "ok"
    no_counts = {
        "status": 503,
        "json": {"status": "unhealthy", "checks": {"rq_workers": {"error": "NOAUTH"}}},
    }
    assert vp.app_rows(no_counts, [{"default": 2}])[1] == {
        "tier": "app",
        "check": "rq workers per queue",
        "result": "FAIL",
        "detail": "/health reported no worker counts: NOAUTH",
    }
    refused = {"status": -1, "url": "http://10.0.0.5:8000/health", "msg": REFUSED}
    rows = vp.app_rows(refused, [{"default": 2}])
    assert rows[0]["detail"] == "no answer from http://10.0.0.5:8000/health: " + REFUSED
    assert rows[1]["result"] == "skipped"


STAT = """# pxname,svname,qcur,status,
https,FRONTEND,0,OPEN,
app,app1,0,UP,
app,app2,0,{app2},
app,BACKEND,0,UP,
pg_primary,pg1,0,UP,
pg_primary,pg2,0,DOWN,
pg_replicas,pg1,0,DOWN,
pg_replicas,pg2,0,UP 1/2,

"""
BACKENDS = [
    {"name": "app", "rule": "all", "expected": ["app1", "app2"]},
    {"name": "pg_primary", "rule": "one", "expected": []},
    {"name": "pg_replicas", "rule": "some", "expected": []},
]


def test_haproxy_rows_every_rule():
    rows = vp.haproxy_rows(command(STAT.format(app2="UP")), BACKENDS, "/run/haproxy/admin.sock")
    assert [(row["check"], row["result"]) for row in rows] == [
        ("haproxy backend app", "ok"),
        ("haproxy backend pg_primary", "ok"),
        ("haproxy backend pg_replicas", "ok"),
    ]
    assert rows[0]["detail"] == "app1 UP, app2 UP"
    assert rows[2]["detail"] == "pg1 DOWN, pg2 UP 1/2"
    bad = STAT.format(app2="MAINT").replace("pg_primary,pg2,0,DOWN", "pg_primary,pg2,0,UP")
    bad = bad.replace("pg_replicas,pg2,0,UP 1/2", "pg_replicas,pg2,0,DOWN")
    three = [{"name": "app", "rule": "all", "expected": ["app1", "app2", "app3"]}, *BACKENDS[1:]]
    rows = vp.haproxy_rows(command(bad), three, "/run/haproxy/admin.sock")
    assert [row["detail"] for row in rows] == [
        "not every server UP, no server for app3: app1 UP, app2 MAINT",
        "2 servers UP, expected exactly 1: pg1 UP, pg2 UP",
        "no server UP: pg1 DOWN, pg2 DOWN",
    ]
    missing = vp.haproxy_rows(command(STAT.format(app2="UP")), [{"name": "web", "rule": "all"}], "/s")
    assert missing[0]["detail"] == "no backend web or no server in it"
    refused = command("", stderr="ConnectionRefusedError: [Errno 111] Connection refused", rc=1)
    rows = vp.haproxy_rows(refused, BACKENDS, "/run/haproxy/admin.sock")
    assert {row["result"] for row in rows} == {"FAIL"}
    assert rows[0]["detail"] == (
        "no answer from /run/haproxy/admin.sock: ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert vp.haproxy_stat("Unknown command.\n") == []


SERVICES = [
    {"name": "app", "tier": "app"},
    {"name": "redis_cluster", "tier": "redis"},
    {"name": "redis_sentinel", "tier": "redis"},
]
SERVICE_UNITS = {
    "app": ["grimbots.service"],
    "redis_cluster": [],
    "redis_sentinel": ["redis-sentinel.service"],
}


def running(since=1000, restarts=0):
    return {
        "LoadState": "loaded",
        "ActiveState": "active",
        "SubState": "running",
        "NRestarts": str(restarts),
        "ActiveEnterTimestamp": f"@{since}",
    }


def test_unit_rows_per_expected_service_and_one_row_for_the_workers():
    units = {
        "grimbots.service": running(),
        "rq-worker@default-1.service": running(),
        "rq-worker@default-2.service": running(),
        "redis-server@cluster-7000.service": running(),
        "redis-server@cluster-7001.service": {
            "LoadState": "loaded",
            "ActiveState": "failed",
            "SubState": "failed",
        },
    }
    expected = {
        "app": {"expected": True},
        "redis_cluster": {"expected": True},
        "redis_sentinel": {"expected": False},
    }
    rows = vp.unit_rows(
        units,
        SERVICES,
        expected,
        SERVICE_UNITS,
        1060,
        3,
        600,
        cluster_ports=[7000, 7001],
        worker_units=["rq-worker@default-1.service", "rq-worker@default-2.service"],
        worker_instances=["rq-worker@default-1.service", "rq-worker@default-2.service"],
        app_workers={"default": 2},
    )
    assert [(row["tier"], row["check"], row["result"]) for row in rows] == [
        ("app", "grimbots.service", "ok"),
        ("app", "rq-worker@* units", "ok"),
        ("redis", "redis-server@cluster-7000.service", "ok"),
        ("redis", "redis-server@cluster-7001.service", "FAIL"),
    ]
    assert rows[1]["detail"] == "2 active, none flapping (default 2)"
    # A worker enabled outside app_workers, and one that is down.
    units["rq-worker@default-2.service"] = {
        "LoadState": "loaded",
        "ActiveState": "inactive",
        "SubState": "dead",
    }
    rows = vp.unit_rows(
        units,
        SERVICES[:1],
        expected,
        SERVICE_UNITS,
        1060,
        3,
        600,
        worker_units=["rq-worker@default-2.service", "rq-worker@old-1.service"],
        worker_instances=["rq-worker@default-1.service", "rq-worker@default-2.service"],
        app_workers={"default": 2},
    )
    assert rows[1] == {
        "tier": "app",
        "check": "rq-worker@* units",
        "result": "FAIL",
        "detail": "rq-worker@default-2.service: inactive (dead); "
        "rq-worker@old-1.service: enabled but not in app_workers",
    }


def test_port_rows_one_row_per_tier_with_the_cluster_bus_ports():
    expected = {
        "app": {"expected": True},
        "redis_cluster": {"expected": True},
        "redis_sentinel": {"expected": True},
    }
    ports = {"app": [8000], "redis_sentinel": [26379]}
    listening = {"8000": ["0.0.0.0"], "7000": ["10.0.0.1"], "17000": ["10.0.0.1"], "26379": ["10.0.0.1"]}
    rows = vp.port_rows(["app", "redis"], SERVICES, expected, ports, listening, cluster_ports=[7000, 7001])
    assert rows == [
        {"tier": "app", "check": "listening ports", "result": "ok", "detail": "expected 8000"},
        {
            "tier": "redis",
            "check": "listening ports",
            "result": "FAIL",
            "detail": "nothing listens on 7001, 17001; expected 7000, 17000, 7001, 17001, 26379",
        },
    ]
    # A tier with nothing expected on this host gets no row.
    assert vp.port_rows(["lb"], SERVICES, expected, ports, listening) == []
