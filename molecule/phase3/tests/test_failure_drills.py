"""Failure drills under the Locust mix through HAProxy (HTTPS), each with a write probe (a PIX creation
through the load balancer every 0.25 s, each with its own idempotency key and a 10 s client timeout):

- an app server's container killed (`podman kill`), then started again with its address: no write
  fails but those in flight on it;
- a Redis host that holds a cluster primary (not the queue primary) killed, then started again;
- the Patroni leader's whole host frozen (`podman pause`: PostgreSQL, Patroni and its etcd member) for
  60 s: writes resume within Patroni's failover time (ttl + loop_wait, read from the cluster) + 10 s,
  while the old leader is still frozen;
- the Sentinel queue primary's whole host frozen for 60 s (its Redis Cluster instances and Sentinel
  with it): writes resume within Sentinel's down-after time (read from a Sentinel) + 10 s.

No probe request may outlast the client timeout, and once the topology is whole again every write
succeeds. After the drills every acknowledged write is there with its charge done, and the audit finds
no duplicated effect and no unprocessed webhook. Locust's count of deliveries answered "queued" more
than once is written down, not held against the drills: while the cache is failing over, the dedup
lock fails open by design and the database layer keeps the effect single, which the audit checks. The
figures (when writes resumed, failed requests, longest request) go to the run's summary and
docs/hardening.md.

Hosts are frozen and killed with podman from the controller; every drill is bounded and brings its host
back, even when an assertion fails."""

import contextlib
import json
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest
import requests
from conftest import (
    APPS,
    CLUSTER_PORTS,
    FIGURES,
    LB,
    PGS,
    QUEUE_PORT,
    REDIS,
    SENTINEL_PORT,
    SENTINEL_SERVICE,
    LocustRun,
    cluster_nodes,
    redis_cli,
    sql_through_lb,
    wait_until,
)

USERS = 10
LOCUST_MAX_SECONDS = 1800
FREEZE_SECONDS = 60
KILL_SECONDS = 30
PROBE_INTERVAL = 0.25
PROBE_TIMEOUT = 10.0
# The probe goes on this long after the topology is whole again (those writes must all succeed).
SETTLE_SECONDS = 10
PATRONI_PORT = 8008
PROBE_BOT = 1

# The lab's certificate is self-signed.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@dataclass
class Write:
    sent: float  # time.time() when sent
    seconds: float  # until the answer, or until the client gave up
    status: int | None  # None: no answer (client timeout or connection error)
    payment_id: str | None
    error: str = ""

    @property
    def ok(self) -> bool:
        # 200: the payment was already there, stored by an earlier attempt of the same request (HAProxy
        # sends a request again when a server dropped it) and answered now.
        return self.status in (200, 201) and bool(self.payment_id)


class WriteProbe:
    """POST /api/pix through the load balancer every PROBE_INTERVAL s until stopped, each request in its
    own thread (a slow answer does not delay the next), with a PROBE_TIMEOUT client timeout."""

    def __init__(self, lb_address: str, tag: str) -> None:
        self.url = f"https://{lb_address}/api/pix"
        self.tag = tag
        self.writes: list[Write] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pacer = threading.Thread(target=self._pace, daemon=True)

    def __enter__(self) -> "WriteProbe":
        self._pacer.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._pacer.join(PROBE_INTERVAL * 4)
        for thread in self._threads:
            thread.join(PROBE_TIMEOUT + 5)

    def _pace(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            thread = threading.Thread(target=self._one, args=(f"{self.tag}-{n}",), daemon=True)
            thread.start()
            self._threads.append(thread)
            self._stop.wait(PROBE_INTERVAL)

    def _one(self, key: str) -> None:
        body = {
            "bot_id": PROBE_BOT,
            "telegram_user_id": 4242,
            "amount_cents": 990,
            "gateway": "stubpay",
            "idempotency_key": key,
        }
        sent, began = time.time(), time.monotonic()
        try:
            response = requests.post(self.url, json=body, timeout=PROBE_TIMEOUT, verify=False)
            status, error = response.status_code, ""
            payment_id = response.json().get("payment_id") if status in (200, 201) else None
        except requests.RequestException as exc:
            status, payment_id, error = None, None, type(exc).__name__
        with self._lock:
            self.writes.append(Write(sent, time.monotonic() - began, status, payment_id, error))

    def all(self) -> list[Write]:
        with self._lock:
            return sorted(self.writes, key=lambda w: w.sent)


@dataclass
class DrillResult:
    name: str
    started: float
    fault_at: float  # when the host was frozen or killed
    ended: float
    whole: float  # when the topology was whole again after the fault
    writes: list[Write]
    outage: float | None  # seconds from the fault until writes succeeded again (outage()); 0: none failed

    def probe_line(self) -> str:
        """The probe's figures: when writes resumed, what failed and how, the longest request."""
        failed = [w for w in self.writes if not w.ok]
        answers = Counter(str(w.status or w.error) for w in failed)
        resumed = "never" if self.outage is None else f"{self.outage:.1f} s"
        return (
            f"{self.name}: writes resumed {resumed} after the fault; probe {len(self.writes)} writes, "
            f"{len(failed)} failed {dict(answers)}, longest {max(w.seconds for w in self.writes):.1f} s; "
            f"topology whole again {self.whole - self.fault_at:.0f} s after the fault"
        )

    def line(self, locust: LocustRun) -> str:
        """The probe's figures and Locust's requests and failures during the drill."""
        before, after = locust.totals_at(self.started), locust.totals_at(self.ended)
        return (
            f"{self.probe_line()}; Locust {after[0] - before[0]} requests, {after[1] - before[1]} failed "
            f"in {self.ended - self.started:.0f} s"
        )


ACKNOWLEDGED: list[str] = []  # payment ids the probe got a 200 or 201 for, in every drill
RESULTS: list[DrillResult] = []


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True, timeout=120).stdout


@contextlib.contextmanager
def paused(name: str):
    podman("pause", name)
    try:
        yield
    finally:
        podman("unpause", name)


@contextlib.contextmanager
def killed(name: str):
    """The container killed (every process, as a host losing power), then started again with the
    address it had: podman would hand a restarted container the next free one, and the topology (Redis
    Cluster, Sentinel, HAProxy, pg_hba) knows each host by its address, as a real network would keep it."""
    info = json.loads(podman("inspect", name))[0]
    short_id = info["Id"][:12]
    networks = {
        net: (conf["IPAddress"], [a for a in conf.get("Aliases") or [] if a != short_id])
        for net, conf in info["NetworkSettings"]["Networks"].items()
    }
    podman("kill", name)
    try:
        yield
    finally:
        for net, (ip, aliases) in networks.items():
            podman("network", "disconnect", net, name)
            podman("network", "connect", "--ip", ip, *(f"--alias={a}" for a in aliases), net, name)
        podman("start", name)


def outage(writes: list[Write], since: float) -> float | None:
    """How long after `since` (the fault) writes succeeded again: the answer of the first successful
    write sent after the first failed one. 0 when none failed, None when none succeeded afterwards."""
    later = [w for w in writes if w.sent + w.seconds >= since]
    first_failure = next((w for w in later if not w.ok), None)
    if first_failure is None:
        return 0.0
    success = [w.sent + w.seconds for w in later if w.ok and w.sent >= first_failure.sent]
    return min(success) - since if success else None


def drill(name: str, lb_address: str, locust: LocustRun, fault, seconds: float, recovered) -> DrillResult:
    """Probe writes for 5 s, then inject `fault` (a context manager: the host is down inside it) for
    `seconds`, and once it is over wait for `recovered` (polled, a truthy value when the topology is whole
    again) and probe SETTLE_SECONDS more."""
    locust.running()
    with WriteProbe(lb_address, f"drill-{len(RESULTS)}-{int(time.time())}") as probe:
        time.sleep(5)
        started = time.time()
        with fault():
            fault_at = time.time()
            time.sleep(seconds)
        wait_until(recovered, f"{name}: the topology whole again", timeout=240, interval=2)
        whole = time.time()
        time.sleep(SETTLE_SECONDS)
    writes = probe.all()
    ACKNOWLEDGED.extend(w.payment_id for w in writes if w.ok)
    result = DrillResult(name, started, fault_at, time.time(), whole, writes, outage(writes, fault_at))
    RESULTS.append(result)
    print(result.probe_line())  # shown with a failed assertion
    return result


def in_flight(write: Write, result: DrillResult) -> bool:
    """Was the write under way while the fault was injected (between the podman command and its end)?"""
    return write.sent <= result.fault_at and write.sent + write.seconds > result.started


def check_common(result: DrillResult, killed: bool = False) -> None:
    """What every drill must show: writes before the fault succeed, no request outlasts the client
    timeout, and writes sent once the topology is whole again all succeed. A killed host takes the
    requests it was serving with it (HAProxy answers them when `timeout server` ends): those in flight at
    the kill are counted, not held against the bound."""
    writes = result.writes
    before = [w for w in writes if w.sent < result.started]
    assert all(w.ok for w in before), before
    hung = [
        w
        for w in writes
        if w.status is None
        and ("Timeout" in w.error or w.seconds >= PROBE_TIMEOUT)
        and not (killed and in_flight(w, result))
    ]
    assert not hung, f"{len(hung)} write(s) got no answer within {PROBE_TIMEOUT} s: {hung[:5]}"
    late = [w for w in writes if w.sent >= result.whole and not w.ok]
    assert not late, f"writes still failing once the topology was whole again: {late[:5]}"


@pytest.fixture(scope="module")
def locust(addresses, lab_vars, tmp_path_factory):
    run = LocustRun(
        addresses[LB],
        lab_vars,
        tmp_path_factory.mktemp("locust"),
        "phase3-failure-drills",
        USERS,
        LOCUST_MAX_SECONDS,
    )
    time.sleep(20)  # users spawned and the pending payments of each opened
    run.running()
    yield run
    run.kill()


def name_of(addresses: dict, ip: str) -> str:
    return next(name for name, address in addresses.items() if address == ip)


def patroni(hosts, addresses, path: str, exclude: str = "") -> dict:
    """A GET of Patroni's REST API, from the first postgres host that answers (other than `exclude`)."""
    for name in PGS:
        if name == exclude:
            continue
        out = hosts[name].run(f"curl -s -m 5 http://{addresses[name]}:{PATRONI_PORT}{path}")
        if out.rc == 0 and out.stdout.startswith("{"):
            return json.loads(out.stdout)
    raise AssertionError(f"no Patroni REST API answered {path}")


def patroni_healthy(hosts, addresses, old_leader: str) -> str | None:
    """The new leader's host when one runs, is not `old_leader`, and every other member streams."""
    members = patroni(hosts, addresses, "/cluster")["members"]
    leaders = [m for m in members if m["role"] == "leader" and m["state"] == "running"]
    streaming = [m for m in members if m["role"] != "leader" and m["state"] == "streaming"]
    if len(leaders) == 1 and len(streaming) == len(PGS) - 1:
        leader = name_of(addresses, leaders[0]["host"])
        return leader if leader != old_leader else None
    return None


def sentinel(hosts, lab_vars, name: str, *args: str):
    return redis_cli(
        hosts[name], SENTINEL_PORT, "sentinel", *args, password=lab_vars["vault_redis_sentinel_password"]
    )


def queue_primary(hosts, addresses, lab_vars, exclude: str = "") -> str:
    for name in REDIS:
        if name == exclude:
            continue
        out = sentinel(hosts, lab_vars, name, "get-master-addr-by-name", SENTINEL_SERVICE)
        if out.rc == 0 and out.stdout.strip():
            return name_of(addresses, out.stdout.split()[0])
    raise AssertionError("no Sentinel named the queue primary")


def cluster_whole(hosts, lab_vars) -> bool:
    """Every slot served, three primaries and three replicas, every link up, as each host sees it."""
    for name in REDIS:
        info = redis_cli(
            hosts[name], CLUSTER_PORTS[0], "cluster", "info", password=lab_vars["vault_redis_password"]
        )
        if "cluster_state:ok" not in info.stdout:
            return False
        nodes = cluster_nodes(hosts, lab_vars, at=name)
        if not (
            sum("master" in n["flags"] for n in nodes) == 3
            and sum("slave" in n["flags"] for n in nodes) == 3
            and all(n["state"] == "connected" and not {"fail", "fail?"} & set(n["flags"]) for n in nodes)
        ):
            return False
    return True


def queue_whole(hosts, addresses, lab_vars) -> bool:
    """Every Sentinel names the same primary, sees two replicas and agrees the quorum holds."""
    primaries = set()
    for name in REDIS:
        out = sentinel(hosts, lab_vars, name, "get-master-addr-by-name", SENTINEL_SERVICE)
        primaries.add(out.stdout.strip())
        if not sentinel(hosts, lab_vars, name, "ckquorum", SENTINEL_SERVICE).stdout.startswith("OK"):
            return False
    if len(primaries) != 1:
        return False
    primary = name_of(addresses, primaries.pop().split()[0])
    info = redis_cli(
        hosts[primary], QUEUE_PORT, "info", "replication", password=lab_vars["vault_redis_password"]
    ).stdout
    return "role:master" in info and "connected_slaves:2" in info


def app_healthy(host) -> bool:
    return (
        host.run("curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/health").stdout == "200"
    )


def test_a_killed_app_server(hosts, locust, addresses):
    victim = APPS[-1]
    result = drill(
        "app server killed",
        addresses[LB],
        locust,
        lambda: killed(victim),
        KILL_SECONDS,
        lambda: app_healthy(hosts[victim]),
    )
    check_common(result, killed=True)
    # HAProxy retries a connection the dead server does not answer on another one: only what was in
    # flight on it at the kill may fail.
    failed = [w for w in result.writes if not w.ok and not in_flight(w, result)]
    assert not failed, failed[:5]


def test_a_killed_redis_cluster_node_host(hosts, addresses, lab_vars, locust):
    # A host with a cluster primary, not the queue primary's host, and whose primary's replica (promoted
    # when it dies) is not on the queue primary's host either: the Sentinel drill that follows freezes
    # that host, and a host holding two of the three primaries takes the cluster down with it (the
    # remaining primaries are no majority to elect replacements).
    queue = queue_primary(hosts, addresses, lab_vars)
    nodes = cluster_nodes(hosts, lab_vars)
    candidates = [
        name
        for name in REDIS
        if name != queue
        and any(
            "master" in primary["flags"]
            and primary["ip"] == addresses[name]
            and all(r["ip"] != addresses[queue] for r in nodes if r["master"] == primary["id"])
            for primary in nodes
        )
    ]
    assert candidates, f"no Redis host fits the drill (queue primary on {queue}): {nodes}"
    victim = candidates[0]
    result = drill(
        "Redis Cluster primary host killed",
        addresses[LB],
        locust,
        lambda: killed(victim),
        KILL_SECONDS,
        lambda: cluster_whole(hosts, lab_vars) and queue_whole(hosts, addresses, lab_vars),
    )
    check_common(result, killed=True)


def test_a_frozen_patroni_leader_host(hosts, addresses, locust):
    leader = patroni_healthy(hosts, addresses, old_leader="")
    assert leader, "no healthy Patroni cluster before the drill"
    config = patroni(hosts, addresses, "/config")
    bound = config["ttl"] + config["loop_wait"] + 10
    result = drill(
        "Patroni leader host frozen",
        addresses[LB],
        locust,
        lambda: paused(leader),
        FREEZE_SECONDS,
        lambda: patroni_healthy(hosts, addresses, old_leader=leader),
    )
    check_common(result)
    assert result.outage is not None and result.outage <= bound, (
        f"writes resumed after {result.outage} s; Patroni fails over within ttl + loop_wait, "
        f"+ 10 s = {bound} s"
    )
    assert result.outage < FREEZE_SECONDS, "writes resumed only after the old leader was back"


def test_a_frozen_sentinel_queue_primary_host(hosts, addresses, lab_vars, locust):
    primary = queue_primary(hosts, addresses, lab_vars)
    settings = sentinel(
        hosts, lab_vars, REDIS[0] if primary != REDIS[0] else REDIS[1], "master", SENTINEL_SERVICE
    )
    fields = settings.stdout.split()
    down_after = int(fields[fields.index("down-after-milliseconds") + 1]) / 1000
    bound = down_after + 10
    result = drill(
        "Sentinel queue primary host frozen",
        addresses[LB],
        locust,
        lambda: paused(primary),
        FREEZE_SECONDS,
        lambda: (
            queue_primary(hosts, addresses, lab_vars) != primary
            and queue_whole(hosts, addresses, lab_vars)
            and cluster_whole(hosts, lab_vars)
        ),
    )
    check_common(result)
    assert result.outage is not None and result.outage <= bound, (
        f"writes resumed after {result.outage} s; Sentinel's down-after is {down_after} s, + 10 s = {bound} s"
    )


def test_after_the_failure_drills_nothing_is_lost_or_duplicated(hosts, addresses, lab_vars, locust):
    assert len(RESULTS) == 4, "a drill did not run"
    summary = locust.stop()
    total = summary["total"]
    FIGURES.extend(result.line(locust) for result in RESULTS)  # Locust's history is complete once it stopped
    drained = hosts[APPS[0]].run("grimbots-app queues --wait-empty 180")
    assert drained.rc == 0, drained.stdout + drained.stderr
    # Webhooks accepted while a host was down may have lost their job: the reconciler (every 30 s) queues
    # them again once GRIMBOTS_RECONCILE_STALE_SECONDS (60 s) old, and charges payments never charged.
    ids = ",".join(f"'{i}'" for i in ACKNOWLEDGED)

    def settled():
        report = json.loads(hosts[APPS[0]].run("grimbots-app audit --json --fail-on-stale").stdout)
        assert report["duplicates"] == 0, report
        charged = int(
            sql_through_lb(
                hosts,
                addresses,
                lab_vars,
                5000,
                f"select count(*) from payments where id in ({ids}) and charge_ref is not null",
            )
        )
        return report["unprocessed_webhooks"] == 0 and charged == len(ACKNOWLEDGED)

    wait_until(settled, "every acknowledged write charged, every webhook processed", 240, 5)
    FIGURES.append(
        f"after the failure drills: {len(ACKNOWLEDGED)} acknowledged probe payments all stored and charged; "
        f"audit 0 duplicated effects, 0 unprocessed webhooks; Locust {total['requests']} requests, "
        f"{total['failures']} failed over {summary['seconds']} s; deliveries answered 'queued' more than "
        f"once while the cache lock failed open: {summary['counts'].get('dedup_violations', 0)}"
    )
