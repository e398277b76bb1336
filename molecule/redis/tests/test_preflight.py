"""Bad input fails before anything changes, with a message naming the variable
and without printing a secret; good input in check mode on the converged host
reports no change and prints no secret either."""

import json
from pathlib import Path

import pytest
from playbook_runs import run_playbook

PLAYBOOK = Path(__file__).with_name("check_mode_probe.yml")


def run_probe(extra_vars: dict) -> tuple[int, str]:
    result = run_playbook(
        PLAYBOOK, "--check", "--diff", "--limit", "redis1", "-e", json.dumps(extra_vars), timeout=300
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("extra_vars", "named"),
    [
        ({"redis_maxmemory_policy": "bogus"}, "redis_maxmemory_policy"),
        ({"redis_mode": "cluster"}, "redis_mode"),
        ({"vault_redis_password": ""}, "redis_password (vault_redis_password)"),
        ({"vault_redis_app_password": "short-pw"}, "redis_app_password"),
        (
            {"vault_redis_app_password": "lab-admin-7Qm2vX9kLp4Rt8Ws"},
            "redis_password and redis_app_password must differ",
        ),
        ({"redis_bind": ["127.0.0.1", "192.0.2.123"]}, "redis_bind"),
        ({"redis_save": ["often"]}, "redis_save"),
        ({"redis_app_acl": ">secret ~* +@all"}, "redis_app_acl"),
        ({"redis_maxclients": 50000}, "redis_nofile_limit"),
        ({"redis_logfile": "/tmp/redis.log"}, "redis_logfile"),
    ],
)
def test_bad_variable_is_named(extra_vars, named, admin_password, app_password):
    rc, output = run_probe(extra_vars)
    assert rc != 0, output
    assert named in output, output
    # Preflight stops the run before any task that changes the host.
    assert "changed=0" in output, output
    for secret in (admin_password, app_password):
        assert secret not in output


def test_check_mode_on_converged_host_reports_no_change(admin_password, app_password):
    rc, output = run_probe({})
    assert rc == 0, output
    assert "changed=0" in output and "failed=0" in output, output
    for secret in (admin_password, app_password):
        assert secret not in output


def test_default_memory_cap_and_kernel_settings_in_check_mode(host, admin_password, app_password):
    # The paths the lab leaves off, run in check mode (nothing is written or
    # applied): the memory cap from 25% of the host's memory, and the kernel
    # settings a non-container host gets.
    memtotal_mb = int(host.check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo")) // 1024
    rc, output = run_probe({"redis_maxmemory_mb": 0, "redis_apply_kernel_settings": True})
    assert rc == 0, output
    assert f"+maxmemory {memtotal_mb * 25 // 100}mb" in output, output
    assert "-maxmemory 256mb" in output, output
    assert "Let the kernel overcommit memory" in output
    assert "+w /sys/kernel/mm/transparent_hugepage/enabled - - - - never" in output, output
    assert "failed=0" in output
    for secret in (admin_password, app_password):
        assert secret not in output
