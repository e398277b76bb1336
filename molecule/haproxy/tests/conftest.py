"""Shared facts and helpers of the haproxy scenario: the lab's variables (molecule.yml), the load
balancer's address and certificate, the runtime API, and a bounded request loop run from this machine
(the client side of the reload and kill tests)."""

import csv
import hashlib
import io
import shlex
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import testinfra
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCENARIO.parent / "shared"))
from podman_host import host  # noqa: F401
from scenario_facts import FigureLog, address, scenario_vars

ROLE_DEFAULTS = yaml.safe_load((SCENARIO.parents[1] / "roles/haproxy/defaults/main.yml").read_text())
ADMIN_SOCKET = "/run/haproxy/admin.sock"
BACKENDS = ["hap-be1", "hap-be2"]
# Figures measured by the drills, shown at the end of the run.
FIGURES = FigureLog("haproxy figures")


def pytest_terminal_summary(terminalreporter):
    FIGURES.report(terminalreporter)


@pytest.fixture(scope="session")
def lab_vars() -> dict:
    return {**ROLE_DEFAULTS, **scenario_vars(SCENARIO, "lb")}


@pytest.fixture(scope="session")
def stats_auth(lab_vars) -> tuple[str, str]:
    return lab_vars["haproxy_stats_user"], lab_vars["vault_haproxy_stats_password"]


@pytest.fixture(scope="session")
def backends() -> dict:
    """testinfra hosts of the two test doubles, by name."""
    return {name: testinfra.get_host(f"podman://{name}") for name in BACKENDS}


@pytest.fixture(scope="module")
def lb_ip(host) -> str:
    return address(host)


@pytest.fixture(scope="module")
def ca_file(host, tmp_path_factory) -> str:
    """The load balancer's self-signed certificate, which clients here trust: every HTTPS request of
    the tests verifies the certificate and the address it was made for."""
    path = tmp_path_factory.mktemp("tls") / "lb.pem"
    path.write_text(host.file("/etc/haproxy/certs/self-signed.pem").content_string)
    return str(path)


@pytest.fixture(scope="module")
def https(lb_ip, ca_file):
    """A requests session to https://<lb>, verifying the role's certificate."""
    session = requests.Session()
    base = f"https://{lb_ip}"

    def call(method: str, path: str, **kwargs) -> requests.Response:
        # verify on each request: a session's own is overridden by REQUESTS_CA_BUNDLE.
        return session.request(method, base + path, timeout=10, verify=ca_file, **kwargs)

    yield call
    session.close()


def runtime_api(host, command: str) -> str:
    """One command on HAProxy's runtime API (the admin socket), as an operator sends it with socat."""
    return host.check_output(f"echo {shlex.quote(command)} | socat -t 5 stdio UNIX-CONNECT:{ADMIN_SOCKET}")


def server_stats(host) -> dict[tuple[str, str], dict]:
    """`show stat` of every server, keyed by (backend, server)."""
    text = runtime_api(host, "show stat -1 4 -1").lstrip("# ")
    return {(row["pxname"], row["svname"]): row for row in csv.DictReader(io.StringIO(text))}


def wait_for_status(host, backend: str, server: str, wanted: str, timeout: float = 30) -> float:
    """Wait until the runtime API shows the server's status starting with `wanted`; return the wait."""
    started = time.monotonic()
    status = ""
    while time.monotonic() - started < timeout:
        status = server_stats(host)[(backend, server)]["status"]
        if status.startswith(wanted):
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"{backend}/{server} is {status}, not {wanted}, after {timeout} s")


def worker_pids(host) -> set[str]:
    """PIDs of HAProxy's current workers, from the master CLI."""
    out = host.check_output("echo 'show proc' | socat -t 5 stdio UNIX-CONNECT:/run/haproxy-master.sock")
    # Lines: <PID> <type> <reloads> <uptime> <version>; old workers are listed under "# old workers".
    current = out.split("# old workers")[0]
    return {line.split()[0] for line in current.splitlines() if " worker " in f" {line} "}


class RequestLoop:
    """Clients sending requests to the load balancer for a bounded time, from this machine.

    `clients` threads POST a small JSON body to `path` back to back for `seconds`: even-numbered ones
    over one keep-alive HTTPS connection (as webhook senders keep connections open), odd-numbered
    ones on a new connection per request (Connection: close). Every
    request that does not get 200 with the body echoed back (its SHA-256 as the double computes it)
    is a failure, with the reason kept."""

    def __init__(self, base: str, ca_file: str, path: str, seconds: float, clients: int = 4) -> None:
        self.base, self.ca_file, self.path = base, ca_file, path
        self.seconds, self.clients = seconds, clients
        self.ok = 0
        self.failures: list[str] = []
        self.servers: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _client(self, n: int) -> None:
        session = requests.Session()
        headers = {"Content-Type": "application/json"} | ({} if n % 2 == 0 else {"Connection": "close"})
        deadline = time.monotonic() + self.seconds
        i = 0
        while time.monotonic() < deadline:
            i += 1
            body = f'{{"client": {n}, "request": {i}, "pad": "{"x" * 2000}"}}'.encode()
            try:
                response = session.post(
                    self.base + self.path, data=body, headers=headers, timeout=15, verify=self.ca_file
                )
                answer = response.json() if response.status_code == 200 else {}
                good = answer.get("sha256") == hashlib.sha256(body).hexdigest()
                reason = "" if good else f"{response.status_code} {response.text[:120]!r}"
            except (requests.RequestException, ValueError) as error:
                answer, reason = {}, f"{type(error).__name__}: {error}"
            with self._lock:
                if reason:
                    self.failures.append(reason)
                else:
                    self.ok += 1
                    self.servers.setdefault(answer["server"], []).append(time.monotonic())
        session.close()

    def start(self) -> "RequestLoop":
        self.started = time.monotonic()
        self._threads = [threading.Thread(target=self._client, args=(n,)) for n in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def join(self) -> "RequestLoop":
        for thread in self._threads:
            thread.join(self.seconds + 30)
        return self
