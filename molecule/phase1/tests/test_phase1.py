"""Phase 1 as an operator sees it: units up, 11 workers in RQ, /health green, the hot paths processed
end to end by the workers, processes that come back after kill -9, Redis closed to strangers."""

import hashlib
import hmac
import json
import shlex
import time
import uuid

import pytest

APP = "http://127.0.0.1:8000"
ENV = "/etc/grimbots/grimbots.env"
DB = "/var/lib/grimbots/grimbots.db"
GATEWAY_SECRET = "lab-only-gateway-secret-0001"
TELEGRAM_SECRET = "lab-only-telegram-webhook-secret-0001"
REDIS_ADMIN_PASSWORD = "lab-only-redis-admin-0001"
WORKERS = {"tasks": 5, "gateway": 3, "webhook": 3}
INSTANCES = [f"{queue}-{n}" for queue, count in WORKERS.items() for n in range(1, count + 1)]


def get_json(host, path, expect_status=None):
    out = host.check_output(f"curl -s -w '\\n%{{http_code}}' {APP}{path}")
    body, status = out.rsplit("\n", 1)
    if expect_status is not None:
        assert int(status) == expect_status, body
    return int(status), json.loads(body)


def post_json(host, path, raw, headers=()):
    header_args = " ".join(f"-H {shlex.quote(h)}" for h in ("Content-Type: application/json", *headers))
    out = host.check_output(
        f"curl -s -w '\\n%{{http_code}}' -X POST {header_args} --data-binary {shlex.quote(raw)} {APP}{path}"
    )
    body, status = out.rsplit("\n", 1)
    return int(status), json.loads(body)


def sql(host, query):
    return host.check_output(f"sqlite3 {DB} {shlex.quote(query)}").strip()


def wait_until(predicate, timeout, step=0.25):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    return None


def health_is_ok(host):
    status, body = get_json(host, "/health")
    return status == 200 and body["status"] == "healthy"


def test_units_active_and_enabled(host):
    for unit in [
        "grimbots.service",
        "grimbots-workers.target",
        "grimbots-reconcile.timer",
        "redis-server",
    ]:
        service = host.service(unit)
        assert service.is_running, unit
        assert service.is_enabled, unit
    for instance in INSTANCES:
        assert host.service(f"rq-worker@{instance}").is_running, instance
    active = host.check_output("systemctl list-units --state=active --no-legend --plain 'rq-worker@*'")
    assert len(active.splitlines()) == 11, active


def test_unit_settings(host):
    show = host.check_output("systemctl show grimbots.service -p Type -p Restart -p User -p NoNewPrivileges")
    assert "Type=notify" in show and "Restart=always" in show
    assert "User=grimbots" in show and "NoNewPrivileges=yes" in show
    env = host.file(ENV)
    assert env.user == "root" and env.group == "grimbots" and env.mode == 0o640


def test_workers_registered_on_their_queues(host):
    def all_registered():
        _, body = get_json(host, "/health")
        queues = body["checks"]["rq_workers"]["queues"]
        return {name: queues[name]["workers"] for name in WORKERS} == WORKERS

    assert wait_until(lambda: all_registered(), 30) is not None
    # The instance name is not a queue: no worker listens on "tasks-1" and its kind.
    names = host.check_output("redis-cli --no-auth-warning -a %s smembers rq:workers", REDIS_ADMIN_PASSWORD)
    assert len(names.split()) == 11
    for instance in INSTANCES:
        assert f"rq:worker:phase1-{instance}" in names


def test_health_is_green(host):
    _, body = get_json(host, "/health", 200)
    assert body["status"] == "healthy", body
    for check in ("database", "redis", "rq_workers"):
        assert body["checks"][check]["status"] == "ok", body
    get_json(host, "/ready", 200)


def test_telegram_update_is_processed_by_the_workers(host):
    chat_id = int(uuid.uuid4().int % 10**9)
    update = {
        "update_id": chat_id,
        "message": {"message_id": 1, "chat": {"id": chat_id}, "text": "/start"},
    }
    token = hmac.new(TELEGRAM_SECRET.encode(), b"telegram-webhook:1", hashlib.sha256).hexdigest()
    auth = [f"X-Telegram-Bot-Api-Secret-Token: {token}"]
    # Without the bot's secret token (anyone who can reach the app): refused, nothing queued.
    status, body = post_json(host, "/webhook/telegram/1", json.dumps(update))
    assert (status, body["error"]) == (401, "bad_secret_token")
    status, body = post_json(host, "/webhook/telegram/1", json.dumps(update), auth)
    assert (status, body) == (200, {"status": "queued"})
    assert post_json(host, "/webhook/telegram/1", json.dumps(update), auth)[1] == {"status": "duplicate"}
    query = f"select count(*) from sent_messages where telegram_user_id = {chat_id} and status = 'sent'"
    assert wait_until(lambda: sql(host, query) == "2", 30) is not None


def test_payment_webhook_is_processed_by_the_workers(host):
    user = int(uuid.uuid4().int % 10**9)
    status, body = post_json(
        host,
        "/api/pix",
        json.dumps(
            {"bot_id": 1, "telegram_user_id": user, "amount_cents": 1990, "idempotency_key": f"t-{user}"}
        ),
    )
    assert status == 201, body
    payment_id = body["payment_id"]
    raw = json.dumps({"event_id": f"evt-{payment_id}", "payment_id": payment_id, "status": "paid"})
    signature = "sha256=" + hmac.new(GATEWAY_SECRET.encode(), raw.encode(), hashlib.sha256).hexdigest()
    status, body = post_json(host, "/webhook/payment/stubpay", raw, [f"X-Signature: {signature}"])
    assert (status, body) == (200, {"status": "queued"})
    paid = f"select status from payments where id = '{payment_id}'"
    assert wait_until(lambda: sql(host, paid) == "paid", 30) is not None
    purchase = f"select status from pixel_events where event_id = 'purchase_{payment_id}'"
    assert wait_until(lambda: sql(host, purchase) == "sent", 30) is not None
    bad = post_json(host, "/webhook/payment/stubpay", raw, ["X-Signature: sha256=00"])
    assert bad == (401, {"error": "bad_signature", "message": bad[1]["message"]})


def test_audit_finds_no_duplicate(host):
    out = host.run("grimbots-app audit --json")
    assert out.rc == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["duplicates"] == 0, report


def test_redis_refuses_a_client_without_password(host):
    out = host.run("redis-cli -h 127.0.0.1 ping")
    assert "NOAUTH" in out.stdout + out.stderr
    assert host.check_output("redis-cli --no-auth-warning -a %s ping", REDIS_ADMIN_PASSWORD) == "PONG"


def _main_pid(host, unit):
    return int(host.check_output(f"systemctl show -p MainPID --value {unit}"))


@pytest.mark.parametrize("unit", ["grimbots.service", "rq-worker@tasks-1.service"])
def test_kill_9_comes_back_within_15_seconds(host, unit):
    old = _main_pid(host, unit)
    assert old > 0
    host.check_output(f"kill -9 {old}")
    killed_at = time.monotonic()

    def back():
        pid = _main_pid(host, unit)
        return pid not in (0, old) and host.service(unit).is_running and health_is_ok(host)

    elapsed = wait_until(back, 15)
    assert elapsed is not None, f"{unit} not back with /health 200 within 15 s"
    print(f"{unit}: kill -9 to /health healthy in {time.monotonic() - killed_at:.1f} s")
