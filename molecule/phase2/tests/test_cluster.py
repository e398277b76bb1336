"""The cluster as an operator sees it: etcd with three healthy members, one Patroni leader and two
streaming replicas within 1 MiB, replicas that refuse writes, pg_hba that refuses strangers, a REST
API whose write endpoints need the password, the seed's timings, tuning derived from the host."""

import json
import shlex

import pytest
import yaml
from patroni_cluster import PG_HOSTS, REST_PORT, cluster, psql, wait_for_healthy_cluster
from scenario_facts import address

testinfra_hosts = [f"ansible://{name}" for name in PG_HOSTS]


def test_units_active_and_enabled(host):
    for unit in ["etcd", "patroni"]:
        service = host.service(unit)
        assert service.is_running, unit
        assert service.is_enabled, unit
    show = host.check_output("systemctl show patroni -p Restart -p User -p KillMode")
    assert "Restart=always" in show and "User=postgres" in show and "KillMode=process" in show
    assert "Restart=always" in host.check_output("systemctl show etcd -p Restart")


def test_debian_default_cluster_does_not_run(host):
    assert not host.file("/etc/postgresql/17/main").exists and not host.file("/etc/postgresql/15/main").exists
    assert host.run("pg_lsclusters -h").stdout.strip() == ""
    assert not host.service("postgresql").is_enabled


def test_patroni_config_is_private_and_patronictl_works(host):
    config = host.file("/etc/patroni/patroni.yml")
    assert config.user == "root" and config.group == "postgres" and config.mode == 0o640
    members = json.loads(host.check_output("patronictl list -f json"))
    assert sorted(m["Member"] for m in members) == PG_HOSTS


def test_postgres_listens_where_configured(host):
    ip = address(host)
    assert host.socket(f"tcp://{ip}:5432").is_listening
    assert host.socket(f"tcp://{ip}:{REST_PORT}").is_listening
    assert host.socket(f"tcp://{ip}:2379").is_listening and host.socket(f"tcp://{ip}:2380").is_listening


def etcdctl(host, args: str, user: str | None = None, endpoints: str = "http://127.0.0.1:2379"):
    """etcdctl in the container, with "name:password" in ETCDCTL_USER (never on the command line)."""
    env = f"ETCDCTL_USER={shlex.quote(user)} " if user else ""
    return host.run(f"{env}etcdctl --endpoints={endpoints} --command-timeout=5s {args}")


def test_etcd_has_three_healthy_members(host, pg, lab_vars):
    endpoints = ",".join(f"http://{address(h)}:2379" for h in pg.values())
    root = f"root:{lab_vars['vault_etcd_root_password']}"
    health = etcdctl(host, "endpoint health", root, endpoints)
    # etcd 3.5 prints the verdicts on stdout, 3.4 on stderr.
    verdicts = health.stdout + health.stderr
    assert health.rc == 0 and verdicts.count("is healthy") == 3, verdicts
    members = json.loads(etcdctl(host, "member list -w json", root, endpoints).stdout)["members"]
    assert sorted(m["name"] for m in members) == PG_HOSTS


def test_etcd_refuses_a_client_without_credentials(host):
    intrusions = (
        "get --prefix /service/",
        "put /service/grimbots_cluster/leader intruder",
        "endpoint health",
    )
    for args in intrusions:
        out = etcdctl(host, args)
        assert out.rc != 0 and "user name is empty" in out.stdout + out.stderr, (args, out.stdout, out.stderr)


def test_patroni_uses_its_own_etcd_user_kept_to_its_prefix(host, lab_vars):
    etcd3 = yaml.safe_load(host.file("/etc/patroni/patroni.yml").content_string)["etcd3"]
    assert etcd3["username"] == "patroni" and etcd3["password"] == lab_vars["vault_etcd_patroni_password"]
    patroni = f"patroni:{lab_vars['vault_etcd_patroni_password']}"
    leader_key = etcdctl(host, "get --print-value-only /service/grimbots_cluster/leader", patroni)
    assert leader_key.rc == 0 and leader_key.stdout.strip() in PG_HOSTS, leader_key.stdout + leader_key.stderr
    out = etcdctl(host, "put /elsewhere x", patroni)
    assert out.rc != 0 and "permission denied" in out.stderr, out.stderr


def test_one_leader_two_streaming_replicas_within_1_mib(pg):
    leader = wait_for_healthy_cluster(pg)
    members = cluster(pg[leader])["members"]
    assert [m["role"] for m in members].count("leader") == 1
    replicas = [m for m in members if m["role"] != "leader"]
    assert len(replicas) == 2 and all(m["state"] == "streaming" for m in replicas), members
    assert all(int(m["lag"]) < 1048576 for m in replicas), members
    streaming = psql(pg[leader], "select count(*) from pg_stat_replication where state = 'streaming'")
    assert streaming.stdout.strip() == "2", streaming.stderr


def test_a_write_on_the_leader_reaches_the_replicas(pg, lab_vars):
    leader = wait_for_healthy_cluster(pg)
    app = {
        "dsn": "host=/var/run/postgresql dbname=grimbots",
        "user": "grimbots",
        "password": lab_vars["vault_postgres_app_password"],
    }
    out = psql(
        pg[leader],
        "create table if not exists probe (v text); insert into probe values ('replicated')",
        **app,
    )
    assert out.rc == 0, out.stderr
    for name, host in pg.items():
        if name != leader:
            out = psql(
                host,
                "select 1 from probe where v = 'replicated' limit 1",
                dsn="dbname=grimbots",
            )
            assert out.rc == 0, out.stderr


def test_a_replica_refuses_writes(pg):
    leader = wait_for_healthy_cluster(pg)
    replica = next(h for name, h in pg.items() if name != leader)
    out = psql(replica, "create table should_fail (i int)", dsn="dbname=grimbots")
    assert out.rc != 0 and "read-only transaction" in out.stderr, out.stdout + out.stderr


def test_pg_hba_refuses_a_host_that_is_not_allowed(pg, lab_vars):
    # pg2 and pg3 are postgres hosts, not app hosts: the app user may not connect from them.
    leader = wait_for_healthy_cluster(pg)
    other = next(h for name, h in pg.items() if name != leader)
    dsn = f"host={address(pg[leader])} dbname=grimbots connect_timeout=5"
    out = psql(
        other,
        "select 1",
        dsn=dsn,
        user="grimbots",
        password=lab_vars["vault_postgres_app_password"],
    )
    assert out.rc != 0 and "no pg_hba.conf entry" in out.stderr, out.stdout + out.stderr
    # The superuser from a cluster host reaches only the postgres database (pg_rewind's need).
    dsn = f"host={address(pg[leader])} dbname=grimbots connect_timeout=5"
    out = psql(
        other,
        "select 1",
        dsn=dsn,
        password=lab_vars["vault_postgres_superuser_password"],
    )
    assert out.rc != 0 and "no pg_hba.conf entry" in out.stderr, out.stdout + out.stderr


def test_password_encryption_is_scram(pg):
    leader = wait_for_healthy_cluster(pg)
    out = psql(
        pg[leader],
        "select rolpassword like 'SCRAM-SHA-256$%' from pg_authid where rolname = 'grimbots'",
    )
    assert out.stdout.strip() == "t", out.stderr


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "restart"), ("POST", "switchover"), ("PATCH", "config")],
)
def test_rest_write_endpoints_need_auth(host, method, path):
    url = f"http://{address(host)}:{REST_PORT}/{path}"
    status = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' -X {method} -d '{{}}' {url}")
    assert status == "401", f"{method} /{path} without auth answered {status}"


def test_rest_write_endpoint_accepts_the_password(host, lab_vars):
    url = f"http://{address(host)}:{REST_PORT}/reload"
    password = lab_vars["vault_patroni_rest_password"]
    status = host.check_output(
        f"curl -s -o /dev/null -w '%{{http_code}}' -u patroni:{password} -X POST {url}"
    )
    assert status in ("200", "202"), status


def test_dynamic_config_has_the_seed_timings(host):
    config = json.loads(host.check_output(f"curl -s http://{address(host)}:{REST_PORT}/config"))
    assert (config["ttl"], config["loop_wait"], config["retry_timeout"]) == (
        30,
        10,
        10,
    ), config
    assert config["maximum_lag_on_failover"] == 1048576 and config["synchronous_mode"] is False, config


def test_tuning_is_derived_from_the_host(host):
    # molecule.yml sizes PostgreSQL as a 1 GiB host: shared_buffers 25%, effective_cache_size 75%.
    settings = psql(
        host,
        "select name || '=' || setting || coalesce(unit, '') from pg_settings where name in "
        "('shared_buffers', 'effective_cache_size', 'max_worker_processes', 'password_encryption')",
    )
    values = dict(line.split("=", 1) for line in settings.stdout.split())
    assert values["shared_buffers"] == "327688kB", values  # 256 MB in 8 kB pages
    assert values["effective_cache_size"] == "983048kB", values  # 768 MB
    assert int(values["max_worker_processes"]) >= 8 and values["password_encryption"] == "scram-sha-256"
