"""Exactly-once payment creation and the reconciler finishing stalled work; authenticated Telegram
webhooks; jobs serialized as JSON."""

from __future__ import annotations

import json
import zlib
from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update

from grimbots import funnel, reconcile, telegram_auth
from grimbots.cli import main as cli_main
from grimbots.messages import _mark_sent
from grimbots.storage import payments, sent_messages, utcnow
from grimbots.web import create_app

from .conftest import TELEGRAM_SECRET, drain, settings_env
from .test_hot_paths import count

LONG_AGO = timedelta(hours=1)


def pix(client, key: str, **fields):
    body = {"bot_id": 1, "telegram_user_id": 5, "amount_cents": 1990, "idempotency_key": key, **fields}
    return client.post("/api/pix", json=body)


def test_a_key_reused_with_other_details_is_a_409(client, services):
    first = pix(client, "order-9")
    assert first.status_code == 201
    assert pix(client, "order-9").get_json() == first.get_json()
    reused = pix(client, "order-9", amount_cents=2990)
    assert reused.status_code == 409 and reused.get_json()["error"] == "idempotency_key_reused"
    assert count(services, payments) == 1


def test_the_key_may_come_in_the_header(client, services):
    body = {"bot_id": 1, "telegram_user_id": 5, "amount_cents": 1990}
    first = client.post("/api/pix", json=body, headers={"Idempotency-Key": "hdr-1"})
    again = client.post("/api/pix", json=body, headers={"Idempotency-Key": "hdr-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json() == again.get_json() and count(services, payments) == 1


def test_a_redelivered_buy_callback_opens_one_payment(services):
    update = {"update_id": 70, "callback_query": {"id": "cb-1", "from": {"id": 8}, "data": "buy:1990"}}
    assert funnel.handle_update(services, 1, update) == "payment_created"
    assert funnel.handle_update(services, 1, {**update, "update_id": 71}) == "payment_created"
    assert count(services, payments) == 1
    assert services.queue("gateway").count == 1


@pytest.mark.parametrize(
    "data", ["buy:0", "buy:", "buy:\u0661\u0662", "buy:\u00b2", "buy:-5", "buy:1234567890"]
)
def test_buy_callbacks_with_no_valid_amount_are_ignored(services, data):
    update = {"update_id": 72, "callback_query": {"id": "cb-2", "from": {"id": 8}, "data": data}}
    assert funnel.handle_update(services, 1, update) == "ignored"
    assert count(services, payments) == 0


def test_the_reconciler_queues_a_charge_that_was_never_queued_once(services, stub):
    row = {
        "id": "p" * 32, "bot_id": 1, "telegram_user_id": 5, "amount_cents": 990, "gateway": "stubpay",
        "status": "pending", "created_at": utcnow() - LONG_AGO,
    }  # fmt: skip
    with services.engine.begin() as conn:
        conn.execute(insert(payments).values(**row))
    assert reconcile.reconcile(services).charges_requeued == 1
    # Run again while the job waits, as every app host's timer does: no second job.
    assert reconcile.reconcile(services).charges_requeued == 0
    assert services.queue("gateway").count == 1
    drain(services, "gateway")
    assert stub.state.stats()["calls"] == {"gateway": 1}
    assert reconcile.reconcile(services).charges_requeued == 0


def test_the_reconciler_does_not_double_a_waiting_webhook_job(client, services):
    from .test_concurrency import _paid_webhook

    payment_id = pix(client, "order-w").get_json()["payment_id"]
    raw, headers = _paid_webhook(payment_id, "evt-w")
    assert client.post("/webhook/payment/stubpay", data=raw, headers=headers).status_code == 200
    assert reconcile.reconcile(services, stale_seconds=0).webhooks_requeued == 0  # its job still waits
    assert services.queue("webhook").count == 1


def _stuck_message(services, key: str) -> int:
    row = {
        "bot_id": 1, "telegram_user_id": 77, "message_key": key, "direction": "out", "text": f"text of {key}",
        "status": "sending", "created_at": utcnow() - LONG_AGO,
    }  # fmt: skip
    with services.engine.begin() as conn:
        conn.execute(insert(sent_messages).values(**row))
        return conn.execute(select(sent_messages.c.id).where(sent_messages.c.message_key == key)).scalar_one()


def test_the_reconciler_finishes_messages_a_dead_worker_left_sending(services, stub):
    never_sent = _stuck_message(services, "delivery:a")
    went_out = _stuck_message(services, "delivery:b")
    _mark_sent(services, 1, 77, "delivery:b")  # its worker died after Telegram's answer
    result = reconcile.reconcile(services)
    assert result.messages_requeued == 2
    assert reconcile.reconcile(services).messages_requeued == 0
    drain(services, "tasks")
    assert stub.state.stats()["calls"] == {"telegram": 1}  # only the one that had not gone out
    with services.engine.connect() as conn:
        statuses = dict(conn.execute(select(sent_messages.c.id, sent_messages.c.status)).all())
    assert statuses == {never_sent: "sent", went_out: "sent"}


def test_a_message_being_sent_now_is_left_alone(services):
    message_id = _stuck_message(services, "delivery:c")
    with services.engine.begin() as conn:
        conn.execute(
            update(sent_messages).where(sent_messages.c.id == message_id).values(created_at=utcnow())
        )
    assert reconcile.reconcile(services, stale_seconds=0).messages_requeued == 0


def test_jobs_are_json_not_pickle(client, services):
    pix(client, "order-j")
    (job_id,) = services.queue("gateway").job_ids
    raw = services.redis.queue.hget(f"rq:job:{job_id}", "data")
    func, _instance, args, _kwargs = json.loads(zlib.decompress(raw))
    assert func == "grimbots.tasks.create_charge" and len(args) == 1


def test_telegram_updates_are_refused_when_no_secret_is_configured(services):
    from dataclasses import replace

    services.settings = replace(services.settings, telegram_webhook_secret="")
    response = create_app(services=services).test_client().post("/webhook/telegram/1", json={"update_id": 1})
    assert response.status_code == 503 and response.get_json()["error"] == "not_configured"
    assert services.queue("tasks").count == 0


def test_the_cli_registers_each_webhook_with_its_bots_token(settings, stub, monkeypatch, capsys):
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    assert cli_main(["telegram-webhook", "--base-url", "https://bots.example.com/"]) == 0
    assert stub.state.stats()["calls"] == {"telegram": 3}
    out = capsys.readouterr().out
    assert "bot 2: webhook https://bots.example.com/webhook/telegram/2" in out
    assert telegram_auth.secret_token(TELEGRAM_SECRET, 2) not in out
    assert cli_main(["telegram-webhook", "--base-url", "http://bots.example.com"]) == 2
    assert cli_main(["telegram-webhook", "--base-url", "https://b.example", "--bot-id", "99"]) == 1
    # Telegram refusing the call: the bot is named, the exit status says so.
    with stub.state.lock:
        stub.state.error_rate = 1.0
    assert cli_main(["telegram-webhook", "--base-url", "https://b.example", "--bot-id", "1"]) == 1
    assert "bot 1: webhook NOT registered" in capsys.readouterr().err
