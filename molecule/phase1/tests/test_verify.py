"""playbooks/verify.yml on the phase-1 server, as an engineer runs it: a healthy server passes with nothing
changed (also under --check) and a JSON report of its checks; with the app server stopped the run fails,
naming the app's checks in its message and in the report."""

import json
import time

import pytest
from playbook_runs import run_verify, verify_rows

SECRETS = ("lab-only-redis-admin-0001", "lab-only-redis-app-0001", "lab-only-gateway-secret-0001")
APP_CHECKS = [
    "/health",
    "rq workers per queue",
    "grimbots.service",
    "grimbots-workers.target",
    "rq-worker@* units",
]


def health_is_green(host) -> bool:
    out = host.run("curl -s -m 5 http://127.0.0.1:8000/health")
    return out.rc == 0 and '"status": "healthy"' in out.stdout.replace('":"', '": "')


@pytest.mark.parametrize("mode", [[], ["--check"]], ids=["run", "check-mode"])
def test_healthy_server_passes_and_changes_nothing(tmp_path, mode):
    report = tmp_path / "report.json"
    result, output = run_verify(report, *mode)
    assert result.returncode == 0, output
    assert "changed=0" in output and "failed=0" in output, output
    assert not any(secret in output for secret in SECRETS), "a secret leaked into the output"
    data = json.loads(report.read_text())
    assert data["result"] == "ok" and data["summary"]["FAIL"] == 0, data
    checks = verify_rows(report, key="tier")
    for name in APP_CHECKS:
        assert checks[("app", name)]["result"] == "ok", checks[("app", name)]
    assert checks[("redis", "redis :6379 PING")]["result"] == "ok"
    assert checks[("redis", "redis-server.service")]["result"] == "ok"
    assert "tasks 5/5" in checks[("app", "rq workers per queue")]["detail"]
    # Phase 3's services are not installed on a phase-1 server: skipped, with why.
    for name in ("redis cluster", "redis sentinel"):
        assert checks[("redis", name)]["result"] == "skipped"
        assert "verify_expect_" in checks[("redis", name)]["detail"]


@pytest.fixture
def stopped_app_server(host):
    """grimbots.service stopped (a kill would be restarted by Restart=always); started again afterwards,
    and /health green again before the next test."""
    host.check_output("systemctl stop grimbots.service")
    yield
    host.check_output("systemctl start grimbots.service")
    deadline = time.monotonic() + 60
    while not health_is_green(host):
        assert time.monotonic() < deadline, "/health not green 60 s after the app server started again"
        time.sleep(1)


def test_stopped_app_server_fails_naming_it(stopped_app_server, tmp_path):
    report = tmp_path / "report.json"
    result, output = run_verify(report)
    assert result.returncode != 0, output
    failure = output[output.index("check(s) failed") :]
    assert '"/health"' in failure and '"grimbots.service"' in failure, failure
    checks = verify_rows(report, key="tier")
    assert checks[("app", "/health")]["result"] == "FAIL"
    assert checks[("app", "grimbots.service")]["result"] == "FAIL"
    assert checks[("app", "grimbots.service")]["detail"].startswith("inactive")
    assert checks[("app", "listening ports")]["result"] == "FAIL"
    # What still runs is still reported healthy.
    assert checks[("redis", "redis :6379 PING")]["result"] == "ok"
    assert checks[("app", "rq-worker@* units")]["result"] == "ok"
    assert json.loads(report.read_text())["result"] == "FAIL"
