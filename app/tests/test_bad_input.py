"""Client mistakes get a 4xx naming the problem, and leave nothing behind."""

from __future__ import annotations

import json

import pytest

from grimbots import payments
from grimbots.settings import QUEUE_NAMES
from grimbots.storage import payments as payments_table
from grimbots.storage import pixel_events, sent_messages, webhook_inbox
from grimbots.telegram_auth import HEADER as TOKEN_HEADER

from .conftest import GATEWAY_SECRET, telegram_headers
from .test_hot_paths import count


def state(services) -> tuple:
    rows = tuple(count(services, t) for t in (payments_table, pixel_events, sent_messages, webhook_inbox))
    queued = tuple(services.queue(name).count for name in QUEUE_NAMES)
    return rows, queued, services.redis.cache.dbsize()


def signed(body: bytes, secret: str = GATEWAY_SECRET) -> dict[str, str]:
    return {"X-Signature": payments.sign(secret, body), "Content-Type": "application/json"}


GOOD_EVENT = json.dumps({"event_id": "e1", "payment_id": "p1", "status": "paid"}).encode()


def event(**fields) -> bytes:
    return json.dumps({"event_id": "e1", "payment_id": "p1", "status": "paid", **fields}).encode()


def pix(**fields) -> bytes:
    body = {"bot_id": 1, "telegram_user_id": 5, "amount_cents": 100, "idempotency_key": "k1", **fields}
    return json.dumps(body).encode()


LONG_ID = event(event_id="x" * 10_000)
NUL_ID = event(payment_id="p\x00")
SURROGATE = event(status="\ud800")
DEEP = b"[" * 20_000 + b"]" * 20_000
NO_STATUS = json.dumps({"event_id": "e1", "payment_id": "p1"}).encode()
HUGE = json.dumps({"update_id": 1, "pad": "x" * 70000}).encode()

CASES = [
    # (method, path, body, headers, status, error code)
    ("post", "/webhook/telegram/1", b"{not json", {}, 400, "malformed_json"),
    ("post", "/webhook/telegram/1", b"[1, 2]", {}, 400, "malformed_json"),
    ("post", "/webhook/telegram/1", b'{"message": {}}', {}, 400, "missing_field"),
    ("post", "/webhook/telegram/1", b'{"update_id": "7"}', {}, 400, "invalid_field"),
    ("post", "/webhook/telegram/99", b'{"update_id": 7}', {}, 404, "unknown_bot"),
    ("post", "/webhook/telegram/1", HUGE, {}, 413, "request_entity_too_large"),
    ("post", "/webhook/payment/nopay", GOOD_EVENT, signed(GOOD_EVENT), 404, "unknown_gateway"),
    ("post", "/webhook/payment/stubpay", GOOD_EVENT, {}, 401, "missing_signature"),
    ("post", "/webhook/payment/stubpay", GOOD_EVENT, signed(GOOD_EVENT, "wrong"), 401, "bad_signature"),
    ("post", "/webhook/payment/stubpay", NO_STATUS, signed(NO_STATUS), 400, "missing_field"),
    ("post", "/webhook/payment/stubpay", b"\xff\xfe", signed(b"\xff\xfe"), 400, "malformed_json"),
    ("post", "/api/pix", b'{"bot_id": 1, "telegram_user_id": 5}', {}, 400, "missing_field"),
    (
        "post",
        "/api/pix",
        b'{"bot_id": 1, "telegram_user_id": 5, "amount_cents": -1}',
        {},
        400,
        "invalid_field",
    ),
    (
        "post",
        "/api/pix",
        b'{"bot_id": 42, "telegram_user_id": 5, "amount_cents": 100, "idempotency_key": "k"}',
        {},
        404,
        "unknown_bot",
    ),
    # Without a key a retried request would open a second payment.
    (
        "post",
        "/api/pix",
        b'{"bot_id": 1, "telegram_user_id": 5, "amount_cents": 100}',
        {},
        400,
        "missing_idempotency_key",
    ),
    ("post", "/api/pix", pix(idempotency_key=""), {"Idempotency-Key": ""}, 400, "missing_idempotency_key"),
    # Telegram updates carry the bot's secret token (the test client adds the right one unless given).
    ("post", "/webhook/telegram/1", b'{"update_id": 7}', {TOKEN_HEADER: ""}, 401, "bad_secret_token"),
    ("post", "/webhook/telegram/1", b'{"update_id": 7}', {TOKEN_HEADER: "x" * 64}, 401, "bad_secret_token"),
    (
        "post",
        "/webhook/telegram/1",
        b'{"update_id": 7}',
        {TOKEN_HEADER: "\u00e9" * 64},
        401,
        "bad_secret_token",
    ),
    # Bot 2's token on bot 1's webhook.
    (
        "post",
        "/webhook/telegram/1",
        b'{"update_id": 7}',
        {TOKEN_HEADER: telegram_headers(2)[TOKEN_HEADER]},
        401,
        "bad_secret_token",
    ),
    ("get", "/go/nobody", None, {}, 404, "unknown_slug"),
    # Each answered 500 before the fields were checked against their columns.
    (
        "post",
        "/webhook/payment/stubpay",
        GOOD_EVENT,
        {"X-Signature": "sha256=\u00e9t\u00e9"},
        401,
        "bad_signature",
    ),
    ("post", "/webhook/payment/stubpay", LONG_ID, signed(LONG_ID), 400, "invalid_field"),
    ("post", "/webhook/payment/stubpay", NUL_ID, signed(NUL_ID), 400, "invalid_field"),
    ("post", "/webhook/payment/stubpay", SURROGATE, signed(SURROGATE), 400, "invalid_field"),
    ("post", "/webhook/telegram/1", DEEP, {}, 400, "malformed_json"),
    ("post", "/webhook/telegram/1", b'{"update_id": 1180591620717411303424}', {}, 400, "invalid_field"),
    ("post", "/webhook/telegram/99999999999", b'{"update_id": 7}', {}, 404, "not_found"),
    ("post", "/api/pix", pix(amount_cents=2**70), {}, 400, "invalid_field"),
    ("post", "/api/pix", pix(telegram_user_id=2**70), {}, 400, "invalid_field"),
    ("post", "/api/pix", pix(bot_id=2**40), {}, 400, "invalid_field"),
    ("post", "/api/pix", pix(gateway=[1]), {}, 400, "invalid_field"),
    ("post", "/api/pix", pix(idempotency_key={"a": 1}), {}, 400, "invalid_field"),
    ("post", "/api/pix", pix(idempotency_key="k" * 129), {}, 400, "invalid_field"),
    ("post", "/api/pix", pix(idempotency_key="\ud800"), {}, 400, "invalid_field"),
    ("get", "/go/%00", None, {}, 404, "unknown_slug"),
    ("get", "/go/" + "s" * 65, None, {}, 404, "unknown_slug"),
    ("get", "/no/such/route", None, {}, 404, "not_found"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "code"), CASES)
def test_rejected_without_partial_state(client, services, method, path, body, headers, status, code):
    before = state(services)
    response = getattr(client, method)(path, data=body, headers=headers)
    assert response.status_code == status
    payload = response.get_json()
    assert payload["error"] == code and payload["message"]
    assert state(services) == before


def test_missing_field_is_named(client):
    response = client.post("/webhook/telegram/1", json={"message": {}})
    assert response.get_json()["field"] == "update_id"
