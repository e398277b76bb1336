"""The hot paths end to end: request, queue, worker, effects."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from grimbots import payments, tracking
from grimbots.storage import payments as payments_table
from grimbots.storage import pixel_events, sent_messages, webhook_inbox

from .conftest import GATEWAY_SECRET, drain


def count(services, table, *where) -> int:
    with services.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def start_update(update_id: int, chat_id: int, text: str = "/start") -> dict:
    message = {"message_id": update_id, "chat": {"id": chat_id}, "text": text}
    return {"update_id": update_id, "message": message}


def signed_post(client, body: dict, gateway: str = "stubpay", secret: str = GATEWAY_SECRET):
    raw = json.dumps(body).encode()
    return client.post(
        f"/webhook/payment/{gateway}",
        data=raw,
        headers={"X-Signature": payments.sign(secret, raw), "Content-Type": "application/json"},
    )


def test_ad_click_redirects_to_bot_and_start_carries_tracking(client, services, stub):
    response = client.get("/go/bot1?fbclid=abc123&utm_source=fb")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("https://t.me/demo1_bot?start=")
    payload = location.split("start=")[1]
    assert len(payload) <= 64
    click_id = tracking.click_id_from_payload(payload)
    assert tracking.load_click(services.redis, click_id)["fbclid"] == "abc123"
    drain(services)
    assert count(services, pixel_events, pixel_events.c.event_name == "PageView") == 1

    # The lead taps /start with the payload: welcome + offer, and ViewContent carrying the fbclid.
    response = client.post("/webhook/telegram/1", json=start_update(10, 555, f"/start {payload}"))
    assert response.status_code == 200
    drain(services)
    assert count(services, sent_messages, sent_messages.c.telegram_user_id == 555) == 2
    with services.engine.connect() as conn:
        view = conn.execute(select(pixel_events).where(pixel_events.c.event_name == "ViewContent")).one()
    assert view.event_id == "viewcontent_1_555"
    assert json.loads(view.payload)["fbclid"] == "abc123"
    assert view.status == "sent"
    assert stub.state.stats()["calls"] == {"capi": 2, "telegram": 2}


def test_purchase_flow_pays_once_and_sends_one_purchase(client, services, stub):
    body = {"bot_id": 1, "telegram_user_id": 77, "amount_cents": 1990, "idempotency_key": "order-77"}
    response = client.post("/api/pix", json=body)
    assert response.status_code == 201
    payment_id = response.get_json()["payment_id"]
    drain(services, "gateway")
    assert stub.state.stats()["calls"] == {"gateway": 1}

    event = {"event_id": "evt-1", "payment_id": payment_id, "status": "paid"}
    assert signed_post(client, event).get_json() == {"status": "queued"}
    assert signed_post(client, event).get_json() == {"status": "duplicate"}
    drain(services, "webhook")
    with services.engine.connect() as conn:
        payment = conn.execute(select(payments_table)).one()
        purchase = conn.execute(select(pixel_events)).one()
        inbox = conn.execute(select(webhook_inbox)).one()
    assert payment.status == "paid" and payment.effects_done_at is not None
    assert purchase.event_id == f"purchase_{payment_id}" and purchase.status == "sent"
    assert inbox.result == "paid" and inbox.processed_at is not None
    assert count(services, sent_messages, sent_messages.c.message_key == f"delivery:{payment_id}") == 1
