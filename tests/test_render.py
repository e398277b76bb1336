"""Every role's configuration rendered for an inventory whose service network (10.77.0.0/24, set with
grimbots_service_address) is not the network of the default route (192.0.2.0/24): every client points at
the service network, and the default route's addresses appear nowhere (tests/render/render.yml)."""

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT, ansible_playbook

RENDER = ROOT / "tests/render"
SERVICE = {
    "lb1": "10.77.0.10",
    **{f"app{i}": f"10.77.0.2{i}" for i in (1, 2, 3)},
    **{f"redis{i}": f"10.77.0.3{i}" for i in (1, 2, 3)},
    **{f"pg{i}": f"10.77.0.4{i}" for i in (1, 2, 3)},
}
PG = [SERVICE[f"pg{i}"] for i in (1, 2, 3)]
REDIS = [SERVICE[f"redis{i}"] for i in (1, 2, 3)]
APP = [SERVICE[f"app{i}"] for i in (1, 2, 3)]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("render")
    result = ansible_playbook(RENDER / "render.yml", "-e", f"render_dir={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def read(rendered: Path, host: str, name: str) -> str:
    return (rendered / host / name).read_text()


def test_no_configuration_names_the_default_route(rendered):
    files = [path for path in rendered.rglob("*") if path.is_file()]
    assert len(files) >= 25
    lines = [(path, line) for path in files for line in path.read_text().splitlines()]
    leaks = [f"{path.relative_to(rendered)}: {line}" for path, line in lines if "192.0.2." in line]
    assert leaks == []


def test_etcd_and_patroni_use_the_service_network(rendered):
    for host in ("pg1", "pg2", "pg3"):
        own = SERVICE[host]
        members = ",".join(f"pg{i}=http://{address}:2380" for i, address in enumerate(PG, 1))
        assert f'ETCD_INITIAL_CLUSTER="{members}"' in read(rendered, host, "etcd-bootstrap")
        etcd = read(rendered, host, "etcd.default")
        assert f'ETCD_ADVERTISE_CLIENT_URLS="http://{own}:2379"' in etcd
        assert f'ETCD_INITIAL_ADVERTISE_PEER_URLS="http://{own}:2380"' in etcd
        patroni = read(rendered, host, "patroni.yml")
        assert f"connect_address: {own}:8008" in patroni
        assert f"connect_address: {own}:5432" in patroni
        assert f"hosts: {json.dumps([f'{a}:2379' for a in PG])}" in patroni
        # pg_hba: the members replicate, the app servers and the load balancer reach the app database.
        for address in PG:
            assert f"host replication replicator {address}/32 scram-sha-256" in patroni
        for address in [*APP, SERVICE["lb1"]]:
            assert f"host grimbots grimbots {address}/32 scram-sha-256" in patroni


def test_redis_and_sentinel_announce_the_service_network(rendered):
    for host in ("redis1", "redis2", "redis3"):
        own = SERVICE[host]
        for port in (7000, 7001):
            conf = read(rendered, host, f"redis-cluster-{port}.conf")
            assert f"cluster-announce-ip {own}" in conf
            assert re.search(rf"^bind .*\b{re.escape(own)}\b", conf, re.M)
        assert f"replica-announce-ip {own}" in read(rendered, host, "redis-sentinel-6379.conf")
        sentinel = read(rendered, host, "sentinel.conf")
        assert f"sentinel announce-ip {own}" in sentinel
        # A fresh deploy: the first redis host is the queue primary.
        assert f"sentinel monitor grimbots-queue {REDIS[0]} 6379 2" in sentinel


def test_the_app_finds_every_tier_on_the_service_network(rendered):
    for host in ("app1", "app2", "app3"):
        lines = read(rendered, host, "grimbots.env").splitlines()
        env = dict(line.split("=", 1) for line in lines if "=" in line)
        assert re.findall(r"host=([0-9.]+):5432", env["GRIMBOTS_DATABASE_URL"]) == PG
        cluster = [f"{a}:{p}" for a in REDIS for p in (7000, 7001)]
        assert env["GRIMBOTS_REDIS_CACHE_CLUSTER_NODES"].split(",") == cluster
        assert env["GRIMBOTS_REDIS_QUEUE_SENTINELS"].split(",") == [f"{a}:26379" for a in REDIS]


def test_haproxy_sends_to_the_service_network(rendered):
    cfg = read(rendered, "lb1", "haproxy.cfg")
    servers = dict(re.findall(r"^\s*server (\S+) ([0-9.]+):\d+", cfg, re.M))
    for host in ("app1", "app2", "app3", "pg1", "pg2", "pg3"):
        assert servers.get(host) == SERVICE[host], (host, servers)


def test_verify_asks_the_service_network(rendered):
    for host in ("pg1", "pg2", "pg3"):
        asked = json.loads(read(rendered, host, "verify.json"))
        assert asked == {"patroni": f"{SERVICE[host]}:8008", "etcd": f"{SERVICE[host]}:2379"}


def test_haproxy_checks_liveness_and_keeps_the_operational_endpoints_inside(rendered):
    cfg = read(rendered, "lb1", "haproxy.cfg")
    assert "option httpchk GET /livez" in cfg
    deny = [line for line in cfg.splitlines() if "return status 404" in line]
    assert len(deny) == 1 and deny[0].endswith("if { path /metrics /health /ready /livez }"), deny
    assert "track-sc1 src table click_rates if click" in cfg
    assert re.search(r"^backend click_rates\n\s+stick-table type ipv6 .* http_req_rate\(10s\)", cfg, re.M)


def test_the_app_gets_the_telegram_webhook_secret(rendered):
    for host in ("app1", "app2", "app3"):
        lines = read(rendered, host, "grimbots.env").splitlines()
        env = dict(line.split("=", 1) for line in lines if "=" in line)
        assert env["GRIMBOTS_TELEGRAM_WEBHOOK_SECRET"] == "render-only-telegram-webhook-0001-abcdef"
