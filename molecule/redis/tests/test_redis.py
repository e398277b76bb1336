"""What roles/redis (standalone mode) promises, checked on the converged container."""

import shlex
import time
import warnings

import pytest
import redis
from rq import Queue, SimpleWorker

CONF = "/etc/redis/redis.conf"
AUTH_CONF = "/etc/redis/redis-auth.conf"


def test_redis_server_installed_running_and_enabled(host):
    assert host.package("redis-server").is_installed
    service = host.service("redis-server")
    assert service.is_running
    assert service.is_enabled


def test_systemd_drop_in_in_effect(host):
    show = host.check_output("systemctl show redis-server -p Restart -p RestartUSec -p LimitNOFILE")
    assert "Restart=always" in show
    assert "RestartUSec=1s" in show
    assert "LimitNOFILE=20000" in show


def test_listens_on_the_configured_addresses_only(host, host_ip):
    out = host.check_output("ss -Hltn 'sport = :6379'")
    local = {line.split()[3] for line in out.splitlines()}
    assert local == {"127.0.0.1:6379", f"{host_ip}:6379"}


def test_config_files_are_private_and_hold_no_clear_app_password(host, admin_password, app_password):
    for path in (CONF, AUTH_CONF):
        f = host.file(path)
        assert f.user == "redis" and f.group == "redis"
        assert f.mode == 0o640
        assert f.content_string.startswith("#\n# Ansible managed")
    conf = host.file(CONF).content_string
    assert f"include {AUTH_CONF}" in conf
    assert admin_password not in conf and app_password not in conf
    auth = host.file(AUTH_CONF).content_string
    # The app user's password is stored only as its SHA-256 hash.
    assert app_password not in auth
    assert "user grimbots on #" in auth


def test_redis_cannot_rewrite_its_own_config(host, cli, admin_password):
    # /etc/redis is read-only to the unit: CONFIG REWRITE (which would copy
    # the password into redis.conf) fails and the role's file stays as is.
    before = host.file(CONF).sha256sum
    out = cli("config", "rewrite", password=admin_password)
    assert out.startswith("ERR"), out
    assert host.file(CONF).sha256sum == before


def test_admin_password_gets_pong(host, admin_password):
    out = host.check_output(f"redis-cli --no-auth-warning -a {shlex.quote(admin_password)} ping")
    assert out == "PONG"


def test_client_without_password_gets_noauth(cli, host_ip):
    assert "NOAUTH" in cli("ping")
    # Over the network too (as an app server would connect).
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host=host_ip, port=6379, socket_timeout=5).ping()


def test_wrong_password_is_refused(cli):
    assert "WRONGPASS" in cli("ping", password="not-the-password-at-all")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["set", "grimbots:test:acl", "1"], "OK"),
        (["get", "grimbots:test:acl"], "1"),
        (["set", "grimbots:test:lock", "1", "nx", "ex", "30"], ""),
        (["lpush", "grimbots:test:list", "job"], ""),
        (["brpop", "grimbots:test:list", "1"], "job"),
        (["zadd", "grimbots:test:zset", "1", "m"], ""),
        (["bzpopmin", "grimbots:test:zset", "1"], "m"),
        (["info", "server"], "redis_version"),
        (["client", "setname", "molecule-test"], "OK"),
        (["client", "list"], "id="),
        (["eval", "return redis.call('incr', KEYS[1])", "1", "grimbots:test:n"], ""),
        (["publish", "rq:pubsub:test", "hello"], ""),
    ],
)
def test_app_user_can_do_what_rq_and_the_app_need(cli, app_user, app_password, command, expected):
    out = cli(*command, user=app_user, password=app_password)
    assert "NOPERM" not in out and not out.startswith("ERR"), out
    assert expected in out


@pytest.mark.parametrize(
    "command",
    [
        ["flushall"],
        ["flushdb"],
        ["config", "set", "maxmemory", "1"],
        ["config", "get", "requirepass"],
        ["keys", "*"],
        ["acl", "setuser", "intruder", "on", ">pw", "+@all"],
        ["shutdown", "nosave"],
        ["swapdb", "0", "1"],
        ["replicaof", "127.0.0.1", "6380"],
        ["monitor"],
    ],
)
def test_app_user_cannot_run_dangerous_commands(cli, app_user, app_password, command):
    out = cli(*command, user=app_user, password=app_password)
    assert "NOPERM" in out, out


def test_rq_enqueues_and_runs_a_job_as_the_app_user(host_ip, app_user, app_password):
    # A real RQ worker, from this machine, as an app server runs it: it
    # registers, names its connection (CLIENT SETNAME), finds its address
    # (CLIENT LIST), reads the server version (INFO), takes the job and
    # stores its result.
    conn = redis.Redis(host=host_ip, port=6379, username=app_user, password=app_password)
    queue = Queue("molecule-check", connection=conn)
    queue.empty()
    job = queue.enqueue("operator.add", 2, 3)
    worker = SimpleWorker([queue], connection=conn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # RQ warns when CLIENT LIST is refused
        assert worker.work(burst=True)
    assert worker.ip_address != "unknown"
    assert job.get_status(refresh=True) == "finished"
    assert job.return_value() == 5
    queue.delete(delete_jobs=True)


def test_memory_cap_and_policy(cli, admin_password, lab_vars):
    assert cli("config", "get", "maxmemory", password=admin_password).splitlines()[1] == str(
        lab_vars["redis_maxmemory_mb"] * 1024 * 1024
    )
    policy = cli("config", "get", "maxmemory-policy", password=admin_password)
    assert policy.splitlines()[1] == "noeviction"


def test_persistence_settings(cli, admin_password):
    def get(name):
        return cli("config", "get", name, password=admin_password).splitlines()[1]

    assert get("appendonly") == "yes"
    assert get("appendfsync") == "everysec"
    assert get("save") == "3600 1 300 100 60 10000"
    assert get("dir") == "/var/lib/redis"
    info = cli("info", "persistence", password=admin_password)
    assert "aof_enabled:1" in info
    assert "aof_last_write_status:ok" in info


def test_data_from_before_the_role_survived(cli, admin_password):
    # prepare.yml wrote this key into a Redis with Debian's configuration
    # (RDB only); the role turned AOF on without losing it.
    assert cli("get", "grimbots:test:before-role", password=admin_password) == ("survived")


def test_version_specific_settings(host, cli, admin_password):
    version = host.check_output("redis-server --version").split("v=")[1].split()[0]
    hide = cli("config", "get", "hide-user-data-from-log", password=admin_password)
    if int(version.split(".")[0]) >= 8:
        assert hide.splitlines() == ["hide-user-data-from-log", "yes"]
        assert "hide-user-data-from-log yes" in host.file(CONF).content_string
    else:
        # Redis 7.0 has no such setting; the role leaves it out.
        assert "hide-user-data-from-log" not in host.file(CONF).content_string


def test_logs_go_to_the_journal(host):
    out = host.check_output("journalctl -u redis-server --no-pager -o cat")
    assert "Ready to accept connections" in out


def test_kernel_left_alone_in_a_container(host):
    # redis_apply_kernel_settings is false here: nothing that a container
    # boot would apply to the host's kernel is written.
    assert not host.file("/etc/sysctl.d/60-redis.conf").exists
    assert not host.file("/etc/tmpfiles.d/60-redis-thp.conf").exists


def test_systemd_brings_redis_back_after_kill_9(host, cli, admin_password):
    # A key acknowledged before the crash is still there after it (the AOF
    # write precedes the reply).
    assert cli("set", "grimbots:test:crash", "kept", password=admin_password) == "OK"
    old_pid = host.check_output("systemctl show redis-server -p MainPID --value")
    assert old_pid != "0"
    started = time.monotonic()
    host.check_output(f"kill -9 {old_pid}")
    while time.monotonic() - started < 15:
        pid = host.check_output("systemctl show redis-server -p MainPID --value")
        if pid not in ("0", old_pid) and cli("ping", password=admin_password) == "PONG":
            break
        time.sleep(0.2)
    else:
        pytest.fail("redis-server was not back within 15 s of kill -9")
    assert time.monotonic() - started < 15
    assert cli("get", "grimbots:test:crash", password=admin_password) == "kept"
