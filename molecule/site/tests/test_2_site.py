"""site.yml on a fresh inventory of every tier reaches the end state directly, and it is healthy.

No host carries the project's history (no SQLite file, no standalone queue Redis), every host records
phase 3, verify.yml passes with every tier checked, a payment goes through HAProxy to PostgreSQL and its
gateway notification is deduplicated across app servers, and an earlier phase's playbook refuses to
take the deployment back. Molecule's idempotence step has already run site.yml a second time with
nothing changed.
"""

import hashlib
import hmac
import json
import shlex

import pytest
from conftest import APPS, LB, PGS, REDIS
from playbook_runs import assert_phase_playbook_refuses, run_verify, verify_rows
from scenario_facts import secret_values

FACT = "/etc/ansible/facts.d/grimbots.fact"
TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ENV_FILE = "/etc/grimbots/grimbots.env"


def app_env(host) -> dict:
    lines = host.file(ENV_FILE).content_string.splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_every_host_records_phase_3(hosts):
    for name, host in hosts.items():
        assert json.loads(host.file(FACT).content_string) == {"phase": 3}, name


def test_app_servers_start_on_the_end_state(hosts, addresses):
    sentinels = {f"{addresses[name]}:26379" for name in REDIS}
    for name in APPS:
        host = hosts[name]
        assert not host.file("/var/lib/grimbots/grimbots.db").exists, f"{name} has a SQLite database"
        env = app_env(host)
        assert env["GRIMBOTS_DATABASE_URL"].startswith("postgresql"), (name, "database")
        assert any(addresses[pg] in env["GRIMBOTS_DATABASE_URL"] for pg in PGS), (name, "database hosts")
        assert set(env["GRIMBOTS_REDIS_QUEUE_SENTINELS"].split(",")) == sentinels, name
        assert env["GRIMBOTS_REDIS_CACHE_CLUSTER_NODES"], name
        assert host.service("grimbots").is_running, name


def test_the_queue_redis_is_sentinels_only(hosts):
    """The queue Redis (6379) runs on the redis hosts under Sentinel; no app server runs a Redis of its own
    (phase 1's standalone queue is never installed)."""
    for name in REDIS:
        assert hosts[name].service("redis-sentinel").is_running, name
        assert hosts[name].service("redis-server").is_running, name
    for name in APPS:
        assert not hosts[name].package("redis-server").is_installed, f"{name} has a Redis of its own"


def test_verify_passes_on_every_tier(lab_vars, tmp_path):
    report = tmp_path / "report.json"
    result, output = run_verify(report)
    assert result.returncode == 0, output[-5000:]
    assert not any(secret in output for secret in secret_values(lab_vars)), "a secret leaked into the output"
    document = json.loads(report.read_text())
    assert document["result"] == "ok", document["summary"]
    tiers = verify_rows(report, key="tier")
    for tier, check in [
        ("lb", "haproxy.service"),
        ("app", "grimbots.service"),
        ("redis", "redis cluster nodes"),
        ("redis", "sentinel grimbots-queue"),
        ("postgres", "patroni cluster (GET /cluster)"),
    ]:
        assert tiers[(tier, check)]["result"] == "ok", tiers[(tier, check)]


def curl_lb(hosts, path: str, body: str, headers: dict | None = None) -> tuple[int, dict]:
    """POST `body` through HAProxy's HTTPS front end (self-signed in the lab), from the lb host itself."""
    header_args = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in (headers or {}).items())
    command = (
        f"printf %s {shlex.quote(body)} | curl -sk -m 10 -w '\\n%{{http_code}}' "
        f"-H 'Content-Type: application/json' {header_args} --data-binary @- https://127.0.0.1{path}"
    )
    out = hosts[LB].check_output(command)
    text, _, status = out.rpartition("\n")
    return int(status), json.loads(text)


def test_a_payment_through_the_load_balancer(hosts, lab_vars):
    body = json.dumps(
        {"bot_id": 1, "telegram_user_id": 424242, "amount_cents": 1990, "idempotency_key": "site-1"}
    )
    status, created = curl_lb(hosts, "/api/pix", body)
    assert status in (200, 201), created
    payment_id = created["payment_id"]
    # The same key again is the same payment, whichever app server answers.
    assert curl_lb(hosts, "/api/pix", body) == (200, created)
    secret = lab_vars["vault_app_gateway_secrets"]["stubpay"]
    event = json.dumps({"event_id": f"site-{payment_id}", "payment_id": payment_id, "status": "paid"})
    signature = "sha256=" + hmac.new(secret.encode(), event.encode(), hashlib.sha256).hexdigest()
    first = curl_lb(hosts, "/webhook/payment/stubpay", event, {"X-Signature": signature})
    again = curl_lb(hosts, "/webhook/payment/stubpay", event, {"X-Signature": signature})
    assert first == (200, {"status": "queued"}), first
    assert again == (200, {"status": "duplicate"}), again


def test_telegram_updates_need_the_bots_secret_token(hosts, lab_vars):
    update = json.dumps(
        {"update_id": 4242001, "message": {"message_id": 1, "chat": {"id": 4242}, "text": "/start"}}
    )
    status, body = curl_lb(hosts, "/webhook/telegram/3", update)
    assert (status, body["error"]) == (401, "bad_secret_token")
    master = lab_vars["vault_app_telegram_webhook_secret"]
    wrong_bot = hmac.new(master.encode(), b"telegram-webhook:2", hashlib.sha256).hexdigest()
    assert curl_lb(hosts, "/webhook/telegram/3", update, {TOKEN_HEADER: wrong_bot})[0] == 401
    token = hmac.new(master.encode(), b"telegram-webhook:3", hashlib.sha256).hexdigest()
    assert curl_lb(hosts, "/webhook/telegram/3", update, {TOKEN_HEADER: token}) == (200, {"status": "queued"})


@pytest.mark.parametrize("path", ["/metrics", "/health", "/ready", "/livez"])
def test_the_apps_operational_endpoints_are_not_served_through_the_load_balancer(hosts, addresses, path):
    """From another host (not an allowed source): 404 from HAProxy; the app server itself still answers."""
    outside = hosts[APPS[0]].run(f"curl -sk -m 10 -w '\n%{{http_code}}' https://{addresses[LB]}{path}")
    text, _, status = outside.stdout.rpartition("\n")
    assert (status, json.loads(text)["error"]) == ("404", "not_found"), outside.stdout
    direct = hosts[APPS[0]].run(f"curl -s -m 10 -o /dev/null -w '%{{http_code}}' http://127.0.0.1:8000{path}")
    assert direct.stdout == "200", (path, direct.stdout)


@pytest.mark.parametrize("phase", [1, 2])
def test_an_earlier_phase_playbook_refuses(phase, hosts):
    assert_phase_playbook_refuses(phase, 3)
    for name, host in hosts.items():
        assert json.loads(host.file(FACT).content_string) == {"phase": 3}, name
