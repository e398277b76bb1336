"""The reconciler: finds accepted work that stalled and queues it again.

- payment webhooks in the inbox, unprocessed for ``stale_seconds``: queued on ``webhook`` again
  (a queue entry lost with a Redis primary, a worker killed mid-job, an enqueue that failed);
- pending payments with no charge after ``stale_seconds`` (the queue was down when they were
  created): their charge queued on ``gateway``;
- pixel events still ``pending`` (or stuck ``sending``) after ``stale_seconds``: queued for sending;
- messages left ``sending`` by a worker that died mid-send, once no live job can still be on them
  (``stale_seconds``, and at least a job timeout plus an outbound timeout): finished on ``tasks``.

Every job is queued under an id derived from its work (``inbox-<id>``, ``charge-<payment>``, ...) and
only when no job with that id is waiting or running, so a reconciler on every app host, run every
30 s, does not pile up duplicate jobs. Every effect is idempotent besides.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

# Not grimbots.payments: the operator commands (migrations among them) must not load the metrics, whose
# multiprocess directory exists only once the services run.
from .services import Services, charge_job_id
from .storage import payments, pixel_events, sent_messages, utcnow, webhook_inbox

BATCH = 500


@dataclass
class ReconcileResult:
    webhooks_requeued: int = 0
    charges_requeued: int = 0
    pixel_events_requeued: int = 0
    messages_requeued: int = 0

    def text(self) -> str:
        return (
            f"requeued webhooks={self.webhooks_requeued} charges={self.charges_requeued} "
            f"pixel_events={self.pixel_events_requeued} messages={self.messages_requeued}"
        )


def pixel_job_id(event_id: str) -> str:
    # Event ids may hold characters RQ refuses in a job id.
    return "pixel-" + hashlib.sha256(event_id.encode()).hexdigest()[:32]


def reconcile(services: Services, stale_seconds: int | None = None) -> ReconcileResult:
    settings = services.settings
    stale = stale_seconds if stale_seconds is not None else settings.reconcile_stale_seconds
    now = utcnow()
    cutoff = now - timedelta(seconds=stale)
    # A message row is "sending" while its job runs: only older than any live job can be is it stuck.
    sending_cutoff = now - timedelta(
        seconds=max(stale, settings.job_timeout_seconds + settings.outbound_timeout)
    )
    with services.engine.begin() as conn:
        inbox_ids = _ids(
            conn,
            select(webhook_inbox.c.id)
            .where(webhook_inbox.c.processed_at.is_(None), webhook_inbox.c.received_at <= cutoff)
            .order_by(webhook_inbox.c.id),
        )
        payment_ids = _ids(
            conn,
            select(payments.c.id)
            .where(
                payments.c.status == "pending",
                payments.c.charge_ref.is_(None),
                payments.c.created_at <= cutoff,
            )
            .order_by(payments.c.created_at),
        )
        # A send that died half-way: Meta deduplicates by event_id, so sending again is safe.
        conn.execute(
            update(pixel_events)
            .where(pixel_events.c.status == "sending", pixel_events.c.created_at <= cutoff)
            .values(status="pending")
        )
        event_ids = _ids(
            conn,
            select(pixel_events.c.event_id)
            .where(pixel_events.c.status == "pending", pixel_events.c.created_at <= cutoff)
            .order_by(pixel_events.c.id),
        )
        message_ids = _ids(
            conn,
            select(sent_messages.c.id)
            .where(sent_messages.c.status == "sending", sent_messages.c.created_at <= sending_cutoff)
            .order_by(sent_messages.c.id),
        )
    result = ReconcileResult()
    for inbox_id in inbox_ids:
        result.webhooks_requeued += services.enqueue_once(
            "webhook", "grimbots.tasks.process_payment_event", inbox_id, job_id=f"inbox-{inbox_id}"
        )
    for payment_id in payment_ids:
        result.charges_requeued += services.enqueue_once(
            "gateway", "grimbots.tasks.create_charge", payment_id, job_id=charge_job_id(payment_id)
        )
    for event_id in event_ids:
        result.pixel_events_requeued += services.enqueue_once(
            "tasks", "grimbots.tasks.send_pixel_event", event_id, job_id=pixel_job_id(event_id)
        )
    for message_id in message_ids:
        result.messages_requeued += services.enqueue_once(
            "tasks", "grimbots.tasks.finish_message", message_id, job_id=f"message-{message_id}"
        )
    return result


def _ids(conn, query) -> list:
    return list(conn.execute(query.limit(BATCH)).scalars().all())
