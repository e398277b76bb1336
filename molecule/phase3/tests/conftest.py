"""Shared facts of the phase-3 scenario: its variables (molecule.yml), every host by name (podman
backend: commands run in the containers directly), and helpers for the checks that span hosts."""

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testinfra

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from podman_host import host  # noqa: F401
from scenario_facts import FigureLog, address, scenario_vars

LB = "p3-lb1"
APPS = ["p3-app1", "p3-app2", "p3-app3"]
REDIS = ["p3-redis1", "p3-redis2", "p3-redis3"]
PGS = ["p3-pg1", "p3-pg2", "p3-pg3"]
CLUSTER_PORTS = [7000, 7001]
QUEUE_PORT = 6379
SENTINEL_PORT = 26379
SENTINEL_SERVICE = "grimbots-queue"
# Figures measured by the drills, shown at the end of the run.
FIGURES = FigureLog("phase 3 figures")
# Modules that move leaderships around or take hosts down: they run after every other module, so that the
# layout checks (test_redis, test_progression, ...) see the converged topology.
RUN_LAST = ("test_failure_drills.py",)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name in RUN_LAST)


def pytest_terminal_summary(terminalreporter):
    FIGURES.report(terminalreporter)


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    return scenario_vars(SCENARIO)


@pytest.fixture(scope="session")
def hosts() -> dict:
    """Every host of the scenario by name, as a testinfra host."""
    names = [LB, *APPS, *REDIS, *PGS]
    return {name: testinfra.get_host(f"podman://{name}") for name in names}


@pytest.fixture(scope="session")
def addresses(hosts) -> dict:
    return {name: address(h) for name, h in hosts.items()}


def redis_cli(host, port: int, *args: str, password: str | None = None, user: str | None = None, at=None):
    """redis-cli in the container against `at` (an address; loopback by default) and port."""
    env = f"REDISCLI_AUTH={shlex.quote(password)} " if password else ""
    target = f"-h {at} " if at else ""
    user_arg = f"--user {shlex.quote(user)} " if user else ""
    command = f"{env}timeout 10 redis-cli --no-auth-warning {target}-p {port} {user_arg}" + " ".join(
        shlex.quote(a) for a in args
    )
    return host.run(command)


def cluster_nodes(hosts, lab_vars, at: str = REDIS[0]) -> list[dict]:
    """CLUSTER NODES as `at` sees it: id, address, flags, its primary's id and link state per node."""
    out = redis_cli(
        hosts[at], CLUSTER_PORTS[0], "cluster", "nodes", password=lab_vars["vault_redis_password"]
    )
    assert out.rc == 0, out.stderr
    nodes = []
    for line in out.stdout.strip().splitlines():
        fields = line.split()
        nodes.append(
            {
                "id": fields[0],
                "ip": fields[1].split("@")[0].rsplit(":", 1)[0],
                "flags": fields[2].split(","),
                "master": fields[3],
                "state": fields[7],
            }
        )
    return nodes


def sql_through_lb(hosts, addresses, lab_vars, port: int, query: str) -> str:
    """One value from the app database through the load balancer's 5000 (primary) or 5001 (a replica),
    as the app user, with psql on a postgres host (PostgreSQL sees the lb's address)."""
    password = shlex.quote(lab_vars["vault_postgres_app_password"])
    dsn = shlex.quote(f"host={addresses[LB]} port={port} dbname=grimbots user=grimbots connect_timeout=5")
    return hosts[PGS[0]].check_output(f"PGPASSWORD={password} psql -X -A -t {dsn} -c {shlex.quote(query)}")


def wait_until(check, what: str, timeout: float = 120, interval: float = 1):
    """Poll `check` until it returns a truthy value; fail naming `what` after `timeout` seconds."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout:
        try:
            last = check()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last})")


def inventory() -> str:
    return os.environ["MOLECULE_INVENTORY_FILE"]


class LocustRun:
    """Locust with the project's mix through HAProxy (HTTPS), in the background, bounded by `max_seconds`
    (it stops by itself then at the latest). `stop()` ends it and returns its summary (--summary-json)."""

    def __init__(
        self, lb_address: str, lab_vars: dict, results: Path, stage: str, users: int, max_seconds: int
    ):
        self.results = results
        self.summary = results / "summary.json"
        root = SCENARIO.parents[1]
        command = [
            sys.executable, "-m", "locust",
            "--config", str(root / "loadtest" / "locust.conf"),
            "-f", str(root / "loadtest" / "locustfile.py"),
            "--host", f"https://{lb_address}",
            "--allow-any-host",
            # HAProxy keeps /health to the lab network; this scenario's network is another.
            "--health-weight", "0",
            "-u", str(users), "-r", "5", "-t", f"{max_seconds}s",
            "--gate", "none",
            "--stage", stage,
            "--summary-json", str(self.summary),
            "--csv", str(results / "locust"),
        ]  # fmt: skip
        env = dict(
            os.environ,
            GRIMBOTS_GATEWAY_SECRET=lab_vars["vault_app_gateway_secrets"]["stubpay"],
            GRIMBOTS_TELEGRAM_WEBHOOK_SECRET=lab_vars["vault_app_telegram_webhook_secret"],
        )
        self.log = (results / "locust.log").open("w")
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=root)
        self.started = time.monotonic()

    def running(self) -> None:
        assert self.proc.poll() is None, self.tail()

    def tail(self) -> str:
        return (self.results / "locust.log").read_text()[-3000:]

    def totals_at(self, when: float) -> tuple[int, int]:
        """(requests, failures) counted by `when` (time.time()), from the stats history CSV (one row
        of running totals every second or so)."""
        last = (0, 0)
        with (self.results / "locust_stats_history.csv").open() as f:
            for row in csv.DictReader(f):
                try:
                    if row["Name"] != "Aggregated" or float(row["Timestamp"]) > when:
                        continue
                    last = (int(row["Total Request Count"]), int(row["Total Failure Count"]))
                except (KeyError, TypeError, ValueError):
                    continue  # the line Locust is writing
        return last

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()
        assert self.summary.exists(), self.tail()
        return {**json.loads(self.summary.read_text()), "seconds": round(time.monotonic() - self.started)}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()
