"""Under a bounded Locust load through HAProxy, a rolling deploy of a new app version (deploy_app.yml)
and a hard stop of one app server's gunicorn cost no client request, and duplicate nothing."""

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from conftest import APPS, FIGURES, LB, SCENARIO, LocustRun, sql_through_lb, wait_until
from playbook_runs import run_playbook

ROOT = SCENARIO.parents[1]
USERS = 15
# Locust stops by itself after this long at the latest; the test stops it earlier, once the drills end.
LOCUST_MAX_SECONDS = 900


def release(host) -> str:
    return host.check_output("readlink /opt/grimbots/current").rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def new_app_version(tmp_path_factory) -> tuple[Path, str]:
    """A copy of app/ with the next patch version: what an operator deploys."""
    source = tmp_path_factory.mktemp("release") / "app"
    shutil.copytree(
        ROOT / "app", source, ignore=shutil.ignore_patterns("tests", "bench", "*.egg-info", "__pycache__")
    )
    pyproject = source / "pyproject.toml"
    text = pyproject.read_text()
    current = re.search(r'(?m)^version\s*=\s*"(\d+)\.(\d+)\.(\d+)"', text)
    version = f"{current[1]}.{current[2]}.{int(current[3]) + 1}"
    pyproject.write_text(text.replace(current[0], f'version = "{version}"', 1))
    return source, version


@pytest.fixture(scope="module")
def load(addresses, lab_vars, tmp_path_factory):
    """Locust through HAProxy in the background; yields a function that stops it and returns its
    summary."""
    run = LocustRun(
        addresses[LB], lab_vars, tmp_path_factory.mktemp("locust"), "phase3-drills", USERS, LOCUST_MAX_SECONDS
    )
    time.sleep(20)  # users spawned and the pending payments of each opened
    run.running()
    yield run.stop
    run.kill()


def test_rolling_deploy_and_a_dead_app_server_cost_no_request(hosts, new_app_version, load):
    source, version = new_app_version
    before = {name: release(hosts[name]) for name in APPS}

    started = time.monotonic()
    run = run_playbook(ROOT / "playbooks" / "deploy_app.yml", "-e", f"app_source_dir={source}", timeout=1200)
    deploy_seconds = time.monotonic() - started
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    after = {name: release(hosts[name]) for name in APPS}
    assert all(after[n].startswith(version + "-") and after[n] != before[n] for n in APPS), (before, after)

    # One app server's gunicorn dies hard (master and workers); systemd brings it back.
    victim = hosts[APPS[1]]
    killed = time.monotonic()
    victim.check_output("systemctl kill -s KILL grimbots.service")
    wait_until(
        lambda: (
            victim.run("curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout
            == "200"
        ),
        "the killed app server healthy again",
        timeout=60,
    )
    back = time.monotonic() - killed
    time.sleep(15)  # load keeps flowing while HAProxy takes the server back

    summary = load()
    total = summary["total"]
    FIGURES.append(
        f"deploy_app.yml of {version} on 3 servers under {USERS} Locust users: {deploy_seconds:.0f} s; "
        f"gunicorn kill -9 -> healthy again {back:.1f} s; load {summary['seconds']} s, "
        f"{total['requests']} requests, {total['failures']} failed, P95 {total['p95_ms']} ms, "
        f"dedup violations {summary['counts'].get('dedup_violations', 0)}"
    )
    assert total["requests"] > 500, summary
    assert total["failures"] == 0, summary
    assert summary["counts"].get("dedup_violations", 0) == 0, summary


def test_after_the_drills_nothing_is_duplicated_or_lost(hosts, addresses, lab_vars):
    drained = hosts[APPS[0]].run("grimbots-app queues --wait-empty 180")
    assert drained.rc == 0, drained.stdout + drained.stderr
    # A webhook accepted while a server restarted may have its job lost (the process ended between the
    # inbox commit and the enqueue, or mid-job): the inbox row stays, and the reconciler (every 30 s)
    # queues it again once it is GRIMBOTS_RECONCILE_STALE_SECONDS (60 s) old. So the audit must come
    # clean within that, plus two reconciler rounds and the job itself.
    deadline = time.monotonic() + 150
    while True:
        out = hosts[APPS[0]].run("grimbots-app audit --json --fail-on-stale")
        report = json.loads(out.stdout)
        assert report["duplicates"] == 0, report
        if out.rc == 0 and report["unprocessed_webhooks"] == 0:
            break
        assert time.monotonic() < deadline, ("accepted webhooks still unprocessed", report)
        time.sleep(5)
    late = sql_through_lb(
        hosts,
        addresses,
        lab_vars,
        5000,
        "select count(*) from webhook_inbox where processed_at - received_at > interval '30 seconds'"
        " and received_at > now() - interval '30 minutes'",
    )
    FIGURES.append(
        f"audit after the drills: 0 duplicated effects, 0 unprocessed webhooks; {late} webhook(s) of the last"
        " 30 min processed more than 30 s after acceptance (queued again by the reconciler)"
    )
