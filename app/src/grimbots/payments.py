"""Payments: PIX charges, gateway webhook signatures, the durable inbox and the ``pending -> paid`` move.

Exactly-once effects come from three layers: the inbox's unique (gateway, dedup_key) collapses
redeliveries of one notification; the conditional UPDATE lets one notification win per payment;
the delivery message and the ``purchase_<payment_id>`` event are unique rows, so a retry of a winner
that died half-way finishes its work without repeating any of it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import RowMapping, func, or_, select, update

from . import dedup, metrics, pixel
from .messages import send_once
from .services import Services, charge_job_id
from .storage import insert_ignoring_conflict, payments, utcnow, webhook_inbox

log = logging.getLogger(__name__)

DEFAULT_GATEWAY = "stubpay"


def sign(secret: str, body: bytes) -> str:
    """The signature a gateway puts in ``X-Signature``: ``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str) -> bool:
    """Constant-time comparison of bytes: a header with non-ASCII characters is a mismatch, not an error."""
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode("utf-8", "replace"))


class KeyReused(ValueError):
    """An idempotency key already names a payment with other details."""


class ChargeNotQueued(RuntimeError):
    """The payment is stored but its charge could not be queued (queue Redis down): the same request
    again queues it, and so does the reconciler once the payment is stale."""

    def __init__(self, payment_id: str, cause: Exception) -> None:
        super().__init__(f"payment {payment_id} stored, charge not queued: {cause}")
        self.payment_id = payment_id


def payment_id_for(bot_id: int, idempotency_key: str) -> str:
    """The payment id a client's idempotency key names (per bot): a retried request is one payment."""
    return hashlib.sha256(f"{bot_id}:{idempotency_key}".encode()).hexdigest()[:32]


def create(
    services: Services,
    bot_id: int,
    telegram_user_id: int,
    amount_cents: int,
    gateway: str | None,
    idempotency_key: str,
) -> tuple[str, bool]:
    """Open a pending payment once per ``idempotency_key`` and queue its charge on ``gateway``.

    Returns (payment id, created now). The same key again returns the same payment, and queues its
    charge again if it has none yet and none is waiting (the first request's enqueue failed);
    with other details it raises :class:`KeyReused`. Raises :class:`ChargeNotQueued` when the row is
    stored but the queue is down.
    """
    payment_id = payment_id_for(bot_id, idempotency_key)
    row = {
        "id": payment_id,
        "bot_id": bot_id,
        "telegram_user_id": telegram_user_id,
        "amount_cents": amount_cents,
        "gateway": gateway or _default_gateway(services),
        "status": "pending",
        "created_at": utcnow(),
    }
    with services.engine.begin() as conn:
        created = insert_ignoring_conflict(conn, payments, row)
        stored = conn.execute(select(payments).where(payments.c.id == payment_id)).mappings().one()
    if not created:
        dedup.hit(dedup.Layer.IDEMPOTENCY_KEY)
        asked = {"telegram_user_id": telegram_user_id, "amount_cents": amount_cents}
        if gateway is not None:
            asked["gateway"] = gateway
        if any(stored[name] != value for name, value in asked.items()):
            raise KeyReused(f"idempotency key already used for payment {payment_id} with other details")
    if stored["status"] == "pending" and not stored["charge_ref"]:
        try:
            services.enqueue_once(
                "gateway", "grimbots.tasks.create_charge", payment_id, job_id=charge_job_id(payment_id)
            )
        except RedisError as exc:
            raise ChargeNotQueued(payment_id, exc) from exc
    return payment_id, created


def _default_gateway(services: Services) -> str:
    return next(iter(services.settings.gateway_secrets), DEFAULT_GATEWAY)


def create_charge(services: Services, payment_id: str) -> None:
    """Ask the gateway for the PIX charge (the stub in the lab) and keep its reference."""
    with services.engine.connect() as conn:
        payment = conn.execute(select(payments).where(payments.c.id == payment_id)).mappings().one()
    if payment["charge_ref"]:
        return
    answer = services.outbound.create_charge(payment["gateway"], payment_id, payment["amount_cents"])
    charge_ref = str(answer.get("id") or answer.get("result", {}).get("id") or payment_id)[:64]
    with services.engine.begin() as conn:
        conn.execute(update(payments).where(payments.c.id == payment_id).values(charge_ref=charge_ref))


def accept_webhook(services: Services, gateway: str, event: dict[str, Any], raw: bytes) -> bool:
    """Store a verified notification in the inbox; True if new (and queued), False if a redelivery.

    The row is committed before this returns, so the 2xx the gateway gets means "stored". If the
    queue is down the reconciler enqueues the row later. A redelivery of a row that is not processed
    yet queues it again unless its job (``inbox-<id>``) waits or runs: the first delivery's server
    may have died between the commit and the enqueue (HAProxy then retries the request on another
    server, which finds the row already there); without this the row would wait for the reconciler.
    """
    row = {
        "gateway": gateway,
        "dedup_key": event["event_id"],
        "payment_id": event["payment_id"],
        "status": event["status"],
        "payload": raw.decode("utf-8", errors="replace"),
        "received_at": utcnow(),
        "attempts": 0,
    }
    with services.engine.begin() as conn:
        inbox_id = _insert_returning_id(conn, row)
        pending_id = None if inbox_id is not None else _unprocessed_id(conn, gateway, row["dedup_key"])
    if inbox_id is None:
        dedup.hit(dedup.Layer.WEBHOOK_INBOX)
        metrics.webhook_events.labels(gateway=gateway, result="duplicate").inc()
        if pending_id is not None:
            _enqueue_inbox(services, gateway, pending_id, "requeued")
        return False
    metrics.webhook_events.labels(gateway=gateway, result="accepted").inc()
    _enqueue_inbox(services, gateway, inbox_id)
    return True


def _enqueue_inbox(services: Services, gateway: str, inbox_id: int, result: str | None = None) -> None:
    try:
        queued = services.enqueue_once(
            "webhook", "grimbots.tasks.process_payment_event", inbox_id, job_id=f"inbox-{inbox_id}"
        )
    except Exception as exc:  # the row is durable; the reconciler will queue it
        metrics.webhook_events.labels(gateway=gateway, result="enqueue_failed").inc()
        log.warning("inbox %s stored but not queued: %s", inbox_id, exc)
        return
    if result is not None and queued:
        metrics.webhook_events.labels(gateway=gateway, result=result).inc()


def _insert_returning_id(conn: Any, row: dict[str, Any]) -> int | None:
    if not insert_ignoring_conflict(conn, webhook_inbox, row):
        return None
    return conn.execute(
        select(webhook_inbox.c.id).where(
            webhook_inbox.c.gateway == row["gateway"], webhook_inbox.c.dedup_key == row["dedup_key"]
        )
    ).scalar_one()


def _unprocessed_id(conn: Any, gateway: str, dedup_key: str) -> int | None:
    return conn.execute(
        select(webhook_inbox.c.id).where(
            webhook_inbox.c.gateway == gateway,
            webhook_inbox.c.dedup_key == dedup_key,
            webhook_inbox.c.processed_at.is_(None),
        )
    ).scalar_one_or_none()


def process_inbox_event(services: Services, inbox_id: int) -> str:
    """Apply one stored notification. Safe to run any number of times for the same row."""
    with services.engine.begin() as conn:
        event = conn.execute(select(webhook_inbox).where(webhook_inbox.c.id == inbox_id)).mappings().first()
        if event is None or event["processed_at"] is not None:
            return "missing" if event is None else str(event["result"])
        conn.execute(
            update(webhook_inbox)
            .where(webhook_inbox.c.id == inbox_id)
            .values(attempts=webhook_inbox.c.attempts + 1)
        )
    result = _apply(services, event["payment_id"]) if event["status"] == "paid" else "ignored"
    # Two runs of one row (a redelivery or the reconciler queued it again while it was queued) race
    # to record their outcome: the first to finish records it, except that the run that won the
    # ``pending -> paid`` move always records "paid", over a loser that finished first.
    unrecorded = webhook_inbox.c.processed_at.is_(None)
    if result == "paid":
        unrecorded = or_(unrecorded, webhook_inbox.c.result != "paid")
    with services.engine.begin() as conn:
        conn.execute(
            update(webhook_inbox)
            .where(webhook_inbox.c.id == inbox_id, unrecorded)
            .values(processed_at=func.coalesce(webhook_inbox.c.processed_at, utcnow()), result=result)
        )
    metrics.webhook_events.labels(gateway=event["gateway"], result=result).inc()
    return result


def _apply(services: Services, payment_id: str) -> str:
    with services.engine.begin() as conn:
        won = conn.execute(
            update(payments)
            .where(payments.c.id == payment_id, payments.c.status == "pending")
            .values(status="paid", paid_at=utcnow())
        ).rowcount
        payment = conn.execute(select(payments).where(payments.c.id == payment_id)).mappings().first()
    if payment is None:
        return "unknown_payment"
    if won:
        deliver(services, payment)
        return "paid"
    dedup.hit(dedup.Layer.STATE_TRANSITION)
    if payment["status"] == "paid" and payment["effects_done_at"] is None:
        deliver(services, payment)  # a winner died before finishing; its unique rows stop any repeat
    return "already_paid"


def deliver(services: Services, payment: RowMapping) -> None:
    """The paid side effects: the delivery message and one Purchase event, each at most once."""
    bot = services.bot(bot_id=payment["bot_id"])
    assert bot is not None, "payments.bot_id is a foreign key"
    pid = payment["id"]
    send_once(
        services,
        bot,
        payment["telegram_user_id"],
        f"delivery:{pid}",
        f"Payment {pid} confirmed. Your access link: https://t.me/+grimbots_{pid}",
    )
    data = {"value": payment["amount_cents"] / 100, "currency": "BRL", "order_id": pid}
    pixel.emit(services, f"purchase_{pid}", "Purchase", bot["id"], data, payment_id=pid)
    with services.engine.begin() as conn:
        conn.execute(
            update(payments)
            .where(payments.c.id == pid, payments.c.effects_done_at.is_(None))
            .values(effects_done_at=utcnow())
        )
