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
