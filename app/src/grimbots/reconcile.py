"""The reconciler: finds accepted work that stalled and queues it again.

- payment webhooks in the inbox, unprocessed for ``stale_seconds``: queued on ``webhook`` again
  (a queue entry lost with a Redis primary, a worker killed mid-job, an enqueue that failed);
- pixel events still ``pending`` (or stuck ``sending``) after ``stale_seconds``: queued for sending.

Running it twice, or while the original job is still running, is safe: every effect is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from .services import Services
from .storage import pixel_events, utcnow, webhook_inbox

BATCH = 500


@dataclass
class ReconcileResult:
    webhooks_requeued: int = 0
    pixel_events_requeued: int = 0


def reconcile(services: Services, stale_seconds: int | None = None) -> ReconcileResult:
    stale = stale_seconds if stale_seconds is not None else services.settings.reconcile_stale_seconds
    cutoff = utcnow() - timedelta(seconds=stale)
    result = ReconcileResult()
    with services.engine.begin() as conn:
        inbox_ids = (
            conn.execute(
                select(webhook_inbox.c.id)
                .where(webhook_inbox.c.processed_at.is_(None), webhook_inbox.c.received_at <= cutoff)
                .order_by(webhook_inbox.c.id)
                .limit(BATCH)
            )
            .scalars()
            .all()
        )
        # A send that died half-way: Meta deduplicates by event_id, so sending again is safe.
        conn.execute(
            update(pixel_events)
            .where(pixel_events.c.status == "sending", pixel_events.c.created_at <= cutoff)
            .values(status="pending")
        )
        event_ids = (
            conn.execute(
                select(pixel_events.c.event_id)
                .where(pixel_events.c.status == "pending", pixel_events.c.created_at <= cutoff)
                .order_by(pixel_events.c.id)
                .limit(BATCH)
            )
            .scalars()
            .all()
        )
    for inbox_id in inbox_ids:
        services.enqueue("webhook", "grimbots.tasks.process_payment_event", inbox_id)
    for event_id in event_ids:
        services.enqueue("tasks", "grimbots.tasks.send_pixel_event", event_id)
    result.webhooks_requeued, result.pixel_events_requeued = len(inbox_ids), len(event_ids)
    return result
