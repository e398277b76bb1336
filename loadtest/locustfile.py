"""GRIMBOTS load test: the seed's Telegram task mix, ad clicks, and signed payment webhooks with duplicates.

    locust -f loadtest/locustfile.py --config loadtest/locust.conf --host http://10.231.0.21:8000 \\
        -u 100 -r 20 -t 60s  # secrets: GRIMBOTS_GATEWAY_SECRET, GRIMBOTS_TELEGRAM_WEBHOOK_SECRET

``loadtest/run.py`` runs the progressive stages, keeps the reports and audits the app afterwards.

Task mix (weights, per simulated user): the seed's ``/health`` 10, ``/start`` 50, text 30, buy button 20
on ``POST /webhook/telegram/<bot_id>``, plus ``GET /go/<slug>`` ad clicks and ``POST
/webhook/payment/<gateway>`` deliveries (``--click-weight``, ``--payment-weight``). Every update id, chat id,
message id and event id is new for the run, so any ``"duplicate"`` answer to a single delivery is a failure.
Each user opens ``--pix-per-user`` pending payments through ``POST /api/pix`` on start so that the payment
webhooks have something to pay (and opens more when it runs out). A share ``--dup-share`` of the
deliveries (payment and Telegram) is sent 2..``--dup-max`` times at once, same bytes, concurrently; exactly
one copy must answer ``"queued"``. A share ``--repeat-share`` of payment webhooks is a second, distinct
notification for a payment already paid (the ``pending -> paid`` transition must refuse it).

At the end the selected gate (``--gate``: the seed's phase-1 gate or the QI 500 gate, thresholds
overridable with ``--max-fail-ratio``, ``--max-p95-ms``, ``--max-p99-ms``) sets the exit code, and
``--summary-json`` receives the figures, both gates' verdicts and what the audit should find afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import itertools
import json
import logging
import random
import socket
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust import between, events, task
from locust import log as locust_log
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

log = logging.getLogger("grimbots.loadtest")

# The lab network (roles/lab/defaults/main.yml: lab_subnet) and loopback are the only targets allowed
# without --allow-any-host.
LAB_SUBNET = ipaddress.ip_network("10.231.0.0/24")


@dataclass(frozen=True)
class Gate:
    """Pass/fail thresholds over all requests of a run; ``None`` leaves a figure unchecked."""

    max_fail_ratio: float | None
    max_p95_ms: float | None
    max_p99_ms: float | None = None

    def failures(self, fail_ratio: float, p95: float, p99: float) -> list[str]:
        found = []
        if self.max_fail_ratio is not None and fail_ratio >= self.max_fail_ratio:
            found.append(f"failure ratio {fail_ratio:.2%} >= {self.max_fail_ratio:.2%}")
        if self.max_p95_ms is not None and p95 >= self.max_p95_ms:
            found.append(f"P95 {p95:.0f} ms >= {self.max_p95_ms:.0f} ms")
        if self.max_p99_ms is not None and p99 >= self.max_p99_ms:
            found.append(f"P99 {p99:.0f} ms >= {self.max_p99_ms:.0f} ms")
        return found


# phase1: the seed's phase-1 check (100+ users, error rate < 1 %, P95 < 500 ms).
# qi500: the seed's QI 500 target latency (P95 < 100 ms), with the same error-rate bound.
GATES = {
    "phase1": Gate(max_fail_ratio=0.01, max_p95_ms=500),
    "qi500": Gate(max_fail_ratio=0.01, max_p95_ms=100),
    "none": Gate(max_fail_ratio=None, max_p95_ms=None),
}

TEXTS = ("oi", "quanto custa?", "como funciona o acesso?", "aceita pix?", "quero comprar", "tem desconto?")
PRICES_CENTS = (990, 1990, 2990, 4990)


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser  # locust's own parser: argument groups do not take is_secret
    group.add_argument(
        "--gateway",
        default="stubpay",
        env_var="GRIMBOTS_GATEWAY",
        help="payment gateway name of the webhooks (default: stubpay)",
    )
    group.add_argument(
        "--gateway-secret",
        default="",
        env_var="GRIMBOTS_GATEWAY_SECRET",
        is_secret=True,
        help="HMAC secret of that gateway (env GRIMBOTS_GATEWAY_SECRET); required when --payment-weight > 0",
    )
    group.add_argument(
        "--telegram-secret",
        default="",
        env_var="GRIMBOTS_TELEGRAM_WEBHOOK_SECRET",
        is_secret=True,
        help="master secret of the Telegram webhooks (env GRIMBOTS_TELEGRAM_WEBHOOK_SECRET); required",
    )
    group.add_argument("--bots", type=int, default=30, help="demo bots 1..N, slugs bot1..botN (default 30)")
    group.add_argument("--dup-share", type=float, default=0.2, help="share of deliveries sent several times")
    group.add_argument("--dup-max", type=int, default=5, help="most copies of a duplicated delivery (2..N)")
    group.add_argument(
        "--repeat-share",
        type=float,
        default=0.05,
        help="share of payment webhooks that are a second, distinct event for a paid payment",
    )
    group.add_argument(
        "--pix-per-user", type=int, default=3, help="pending payments each user opens on start"
    )
    group.add_argument(
        "--health-weight",
        type=int,
        default=10,
        help="weight of the GET /health task (the seed's 10); 0 where the target does not serve /health "
        "(HAProxy keeps it to haproxy_internal_allowed_sources)",
    )
    group.add_argument("--click-weight", type=int, default=20, help="weight of the /go/<slug> task")
    group.add_argument("--payment-weight", type=int, default=20, help="weight of the payment webhook task")
    group.add_argument("--wait-min", type=float, default=0.5, help="seconds between a user's tasks, lower")
    group.add_argument("--wait-max", type=float, default=1.5, help="seconds between a user's tasks, upper")
    group.add_argument("--gate", choices=sorted(GATES), default="phase1", help="gate that sets the exit code")
    group.add_argument("--max-fail-ratio", type=float, default=None, help="override the gate's failure ratio")
    group.add_argument("--max-p95-ms", type=float, default=None, help="override the gate's P95 (ms)")
    group.add_argument("--max-p99-ms", type=float, default=None, help="override the gate's P99 (ms)")
    group.add_argument("--stage", default="", help="stage name written into the summary")
    group.add_argument("--summary-json", default="", help="write figures, gate verdicts, expected audit here")
    group.add_argument(
        "--allow-any-host",
        action="store_true",
        default=False,
        env_var="LOADTEST_ALLOW_ANY_HOST",
        help="allow a target outside loopback and the lab network 10.231.0.0/24",
    )


def _host_allowed(host: str) -> bool:
    name = urlsplit(host).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        return False
    return bool(addresses) and all(
        ipaddress.ip_address(a).is_loopback or ipaddress.ip_address(a) in LAB_SUBNET for a in addresses
    )


class Run:
    """What this run sent and what the app accepted: the audit's expected deltas come from here."""

    def __init__(self) -> None:
        # Microseconds since the epoch: ids stay unique across runs (below 2**53, JSON-safe).
        self.ids = itertools.count(time.time_ns() // 1000)
        self.tag = f"lt{int(time.time())}"
        self.counts: Counter[str] = Counter()
        self.started = (time.monotonic(), time.process_time())

    def next_id(self) -> int:
        return next(self.ids)


RUN = Run()


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _telegram_token(master: str, bot_id: int) -> str:
    """The bot's webhook secret token, as the app derives it (grimbots.telegram_auth)."""
    return hmac.new(master.encode(), f"telegram-webhook:{bot_id}".encode(), hashlib.sha256).hexdigest()


def _json(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.content or b"")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _why(response: Any) -> str:
    """Status and body of a failed answer; for status 0 (no answer) the connection error."""
    if not response.status_code:
        return f"no answer: {getattr(response, 'error', None)!r}"
    return f"status {response.status_code}: {(response.text or '')[:200]}"


def _check_failed(name: str, message: str) -> None:
    """A dedup invariant broken at the HTTP level: counted as a failed request in every report."""
    RUN.counts["dedup_violations"] += 1
    events.request.fire(
        request_type="CHECK",
        name=name,
        response_time=0,
        response_length=0,
        exception=AssertionError(message),
        context={},
    )


class GrimbotsUser(FastHttpUser):
    """Telegram traffic of the demo bots, ad clicks and the gateway's notifications."""

    wait_time = between(0.5, 1.5)  # replaced from --wait-min/--wait-max on init
    max_redirects = 0  # /go answers 302 to t.me: never follow it off the lab
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        self.opts = opts
        self.leads: deque[tuple[int, int]] = deque(maxlen=50)  # (bot id, chat id) of recent /start
        self.click_payloads: deque[tuple[int, str]] = deque(maxlen=20)
        self.pending: list[str] = []
        self.paid: deque[str] = deque(maxlen=20)
        if opts.payment_weight > 0:
            for _ in range(opts.pix_per_user):
                self._create_pix()

    # --- the seed's mix -------------------------------------------------------------------------

    @task(10)
    def health(self) -> None:
        with self.client.get("/health", name="/health", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(_why(response))
            elif (status := _json(response).get("status")) != "healthy":
                response.failure(f"health {status!r}")

    @task(50)
    def telegram_start(self) -> None:
        bot_id, chat_id = self._bot(), RUN.next_id()
        text = "/start"
        if self.click_payloads and random.random() < 0.5:
            bot_id, payload = self.click_payloads.popleft()
            text = f"/start {payload}"
        self.leads.append((bot_id, chat_id))
        message = self._message(chat_id, text)
        if self._telegram(bot_id, {"update_id": RUN.next_id(), "message": message}, "start"):
            RUN.counts["start_queued"] += 1

    @task(30)
    def telegram_text(self) -> None:
        bot_id, chat_id = random.choice(self.leads) if self.leads else (self._bot(), RUN.next_id())
        # A text of its own: the 3 s same-content lock would otherwise (rightly) hold a repeat back.
        message = self._message(chat_id, f"{random.choice(TEXTS)} #{RUN.next_id()}")
        if self._telegram(bot_id, {"update_id": RUN.next_id(), "message": message}, "text"):
            RUN.counts["text_queued"] += 1

    @task(20)
    def telegram_buy(self) -> None:
        bot_id, chat_id = random.choice(self.leads) if self.leads else (self._bot(), RUN.next_id())
        callback = {
            "id": str(RUN.next_id()),
            "from": {"id": chat_id, "is_bot": False, "first_name": "Lead"},
            "message": self._message(chat_id, "Tap BUY to get access now"),
            "chat_instance": str(chat_id),
            "data": f"buy:{random.choice(PRICES_CENTS)}",
        }
        if self._telegram(bot_id, {"update_id": RUN.next_id(), "callback_query": callback}, "buy"):
            RUN.counts["buy_queued"] += 1

    # --- clicks and payments --------------------------------------------------------------------

    @task
    def click(self) -> None:
        bot_id = self._bot()
        url = f"/go/bot{bot_id}?fbclid={RUN.tag}.{RUN.next_id()}&utm_source=fb&utm_campaign=loadtest"
        with self.client.get(url, name="/go/[slug]", allow_redirects=False, catch_response=True) as response:
            location = response.headers.get("Location", "") if response.headers else ""
            if response.status_code != 302 or "start=" not in location:
                response.failure(f"{_why(response)}, Location {location!r}")
                return
            self.click_payloads.append((bot_id, location.split("start=", 1)[1]))

    @task
    def payment_webhook(self) -> None:
        if self.paid and random.random() < self.opts.repeat_share:
            # The gateway notifies a paid payment again under a new event id: stored, never paid twice.
            self._deliver(random.choice(self.paid), copies=1)
            RUN.counts["repeat_events_queued"] += 1
            return
        if not self.pending:
            self._create_pix()
            return
        payment_id = self.pending.pop()
        if self._deliver(payment_id, copies=self._copies()):
            self.paid.append(payment_id)
            RUN.counts["payments_paid"] += 1

    # --- helpers --------------------------------------------------------------------------------

    def _bot(self) -> int:
        return random.randint(1, self.opts.bots)

    @staticmethod
    def _message(chat_id: int, text: str) -> dict[str, Any]:
        return {
            "message_id": RUN.next_id(),
            "from": {"id": chat_id, "is_bot": False, "first_name": "Lead", "language_code": "pt-br"},
            "chat": {"id": chat_id, "type": "private", "first_name": "Lead"},
            "date": int(time.time()),
            "text": text,
        }

    def _copies(self) -> int:
        return random.randint(2, max(2, self.opts.dup_max)) if random.random() < self.opts.dup_share else 1

    def _create_pix(self) -> None:
        body = {
            "bot_id": self._bot(),
            "telegram_user_id": RUN.next_id(),
            "amount_cents": random.choice(PRICES_CENTS),
            # One key per payment: a retry of this request (HAProxy's) is the same payment.
            "idempotency_key": f"{RUN.tag}-pix-{RUN.next_id()}",
            "gateway": self.opts.gateway,
        }
        with self.client.post("/api/pix", json=body, name="/api/pix", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(_why(response))
                return
            payment_id = _json(response).get("payment_id")
            if not payment_id:
                response.failure(f"no payment_id in {(response.text or '')[:200]}")
                return
            self.pending.append(payment_id)
            RUN.counts["pix_created"] += 1

    def _telegram(self, bot_id: int, update: dict[str, Any], kind: str) -> bool:
        raw = json.dumps(update).encode()
        name = f"/webhook/telegram/[bot_id] {kind}"
        headers = {"X-Telegram-Bot-Api-Secret-Token": _telegram_token(self.opts.telegram_secret, bot_id)}
        return self._send_copies(f"/webhook/telegram/{bot_id}", name, raw, headers, self._copies())

    def _deliver(self, payment_id: str, copies: int) -> bool:
        event = {"event_id": f"{RUN.tag}-{RUN.next_id()}", "payment_id": payment_id, "status": "paid"}
        raw = json.dumps(event).encode()
        headers = {"X-Signature": _sign(self.opts.gateway_secret, raw)}
        path = f"/webhook/payment/{self.opts.gateway}"
        return self._send_copies(path, "/webhook/payment/[gateway]", raw, headers, copies)

    def _send_copies(self, path: str, name: str, raw: bytes, headers: dict[str, str], copies: int) -> bool:
        """POST the same bytes ``copies`` times at once; True if exactly one copy was queued."""
        headers = {"Content-Type": "application/json", **headers}
        if copies == 1:
            answers = [self._post(path, name, raw, headers)]
        else:
            RUN.counts[f"dup_groups {name.split()[0]}"] += 1
            RUN.counts[f"dup_copies {name.split()[0]}"] += copies
            greenlets = [gevent.spawn(self._post, path, f"{name} (dup)", raw, headers) for _ in range(copies)]
            gevent.joinall(greenlets)
            answers = [g.value for g in greenlets]
        if None in answers:
            return False  # a request failed; already reported
        queued = answers.count("queued")
        if queued != 1:
            _check_failed(f"exactly one of {copies} copies queued", f"{name}: {queued} of {copies} queued")
            return False
        return True

    def _post(self, path: str, name: str, raw: bytes, headers: dict[str, str]) -> str | None:
        """One delivery: its ``status`` ("queued" or "duplicate"), or None if the request failed."""
        with self.client.post(path, data=raw, headers=headers, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(_why(response))
                return None
            status = _json(response).get("status")
            if status not in ("queued", "duplicate"):
                response.failure(f"answer status {status!r}")
                return None
            return status


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    opts = environment.parsed_options
    if opts is None:  # imported by a tool, not run
        return
    if environment.host and not opts.allow_any_host and not _host_allowed(environment.host):
        raise SystemExit(
            f"loadtest: {environment.host} is outside loopback and the lab network {LAB_SUBNET}; "
            "pass --allow-any-host to load it anyway"
        )
    if opts.payment_weight > 0 and not opts.gateway_secret:
        raise SystemExit("loadtest: --gateway-secret (or env GRIMBOTS_GATEWAY_SECRET) is required")
    if not opts.telegram_secret:
        raise SystemExit("loadtest: --telegram-secret (or env GRIMBOTS_TELEGRAM_WEBHOOK_SECRET) is required")
    if not (0 <= opts.dup_share <= 1 and 0 <= opts.repeat_share <= 1):
        raise SystemExit("loadtest: --dup-share and --repeat-share are shares between 0 and 1")
    own = (GrimbotsUser.health, GrimbotsUser.click, GrimbotsUser.payment_webhook)
    weighted = [t for t in GrimbotsUser.tasks if t not in own]
    weighted += [GrimbotsUser.health] * opts.health_weight
    weighted += [GrimbotsUser.click] * opts.click_weight
    weighted += [GrimbotsUser.payment_webhook] * opts.payment_weight
    GrimbotsUser.tasks = weighted
    GrimbotsUser.wait_time = between(opts.wait_min, opts.wait_max)


@events.test_start.add_listener
def _test_start(**_: Any) -> None:
    RUN.started = (time.monotonic(), time.process_time())


def _gate(opts: Any) -> Gate:
    base = GATES[opts.gate]
    return Gate(
        max_fail_ratio=base.max_fail_ratio if opts.max_fail_ratio is None else opts.max_fail_ratio,
        max_p95_ms=base.max_p95_ms if opts.max_p95_ms is None else opts.max_p95_ms,
        max_p99_ms=base.max_p99_ms if opts.max_p99_ms is None else opts.max_p99_ms,
    )


def _entry(stats: Any) -> dict[str, Any]:
    return {
        "requests": stats.num_requests,
        "failures": stats.num_failures,
        "rps": round(stats.total_rps, 1),
        "p50_ms": stats.get_response_time_percentile(0.5),
        "p95_ms": stats.get_response_time_percentile(0.95),
        "p99_ms": stats.get_response_time_percentile(0.99),
        "max_ms": round(stats.max_response_time or 0, 1),
    }


@events.quitting.add_listener
def _verdict(environment: Environment, **_: Any) -> None:
    opts = environment.parsed_options
    total = environment.stats.total
    fail_ratio = total.fail_ratio
    p95 = total.get_response_time_percentile(0.95)
    p99 = total.get_response_time_percentile(0.99)
    gate = _gate(opts)
    failures = gate.failures(fail_ratio, p95, p99)
    if RUN.counts["dedup_violations"]:
        failures.append(f"{RUN.counts['dedup_violations']} deliveries not queued exactly once")
    if total.num_requests == 0:
        failures.append("no request was made")
    if environment.runner is not None and environment.runner.exceptions:
        failures.append(f"{len(environment.runner.exceptions)} distinct exceptions in the load test's tasks")
    if locust_log.unhandled_greenlet_exception:
        failures.append("an unhandled exception in the load test (see the log)")
    verdicts = {name: not g.failures(fail_ratio, p95, p99) for name, g in GATES.items() if name != "none"}
    counts = dict(RUN.counts)
    wall, cpu = time.monotonic() - RUN.started[0], time.process_time() - RUN.started[1]
    # Locust runs on one core; on a shared machine it takes that much from the app.
    loadgen_cpu = round(100 * cpu / wall, 1) if wall > 0 else 0.0
    paid = counts.get("payments_paid", 0)
    summary = {
        "stage": opts.stage,
        "host": environment.host,
        "users": opts.num_users,
        "spawn_rate": opts.spawn_rate,
        "run_time_s": opts.run_time,
        "total": {**_entry(total), "fail_ratio": round(fail_ratio, 5)},
        "endpoints": {f"{s.method} {s.name}": _entry(s) for s in environment.stats.entries.values()},
        "gate": {"name": opts.gate, **asdict(gate), "passed": not failures, "failures": failures},
        "gates": verdicts,
        "loadgen_cpu_percent": loadgen_cpu,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else [],
        "counts": counts,
        # What the audit's totals must grow by once the workers are done (at least: others may add).
        "expected_audit_delta": {
            "messages": 2 * counts.get("start_queued", 0) + counts.get("text_queued", 0) + paid,
            "paid_transitions": paid,
            "purchase_events": paid,
        },
    }
    if opts.summary_json:
        path = Path(opts.summary_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
    log.info(
        "%s: %d requests, %.1f req/s, failures %.2f%%, P50 %s ms, P95 %s ms, P99 %s ms; gates %s; "
        "load generator CPU %.0f%% of a core",
        opts.stage or "run",
        total.num_requests,
        total.total_rps,
        100 * fail_ratio,
        total.get_response_time_percentile(0.5),
        p95,
        p99,
        ", ".join(f"{n} {'pass' if ok else 'FAIL'}" for n, ok in verdicts.items()),
        loadgen_cpu,
    )
    if failures:
        log.error("gate %s FAILED: %s", opts.gate, "; ".join(failures))
        environment.process_exit_code = 1
    else:
        log.info("gate %s passed", opts.gate)
        environment.process_exit_code = 0
