"""Pixel (Meta CAPI) events with deterministic ids: recorded once, sent once.

The ``event_id`` names the fact, not the attempt (``purchase_<payment_id>``, ``viewcontent_<bot>_<user>``),
so the unique constraint on ``pixel_events.event_id`` stops a second copy, and Meta can deduplicate too.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select, update

from . import dedup, metrics
from .services import Services
from .storage import insert_ignoring_conflict, pixel_events, utcnow


def record(
    services: Services,
    event_id: str,
    event_name: str,
    bot_id: int,
    data: dict[str, Any],
    payment_id: str | None = None,
) -> bool:
    """Store the event as pending. False (and a ``event_id`` dedup hit) if it was recorded before."""
    row = {
        "event_id": event_id,
        "event_name": event_name,
        "bot_id": bot_id,
        "payment_id": payment_id,
        "payload": json.dumps(data, sort_keys=True),
        "status": "pending",
        "created_at": utcnow(),
    }
    with services.engine.begin() as conn:
        created = insert_ignoring_conflict(conn, pixel_events, row)
    if not created:
        dedup.hit(dedup.Layer.EVENT_ID)
    return created


def send(services: Services, event_id: str) -> bool:
    """Send a pending event. Only the caller that moves it ``pending -> sending`` sends it."""
    with services.engine.begin() as conn:
        claimed = conn.execute(
            update(pixel_events)
            .where(pixel_events.c.event_id == event_id, pixel_events.c.status == "pending")
            .values(status="sending")
        ).rowcount
        event = conn.execute(select(pixel_events).where(pixel_events.c.event_id == event_id)).mappings().one()
    if not claimed:
        return False
    bot = services.bot(bot_id=event["bot_id"])
    assert bot is not None, "pixel_events.bot_id is a foreign key"
    body = {
        "event_name": event["event_name"],
        "event_id": event_id,
        "event_time": int(time.time()),
        "action_source": "website",
        "custom_data": json.loads(event["payload"]),
    }
    try:
        services.outbound.send_pixel_event(bot["pixel_id"], body)
    except Exception:
        _set_status(services, event_id, "pending")
        raise
    _set_status(services, event_id, "sent", sent_at=utcnow())
    metrics.pixel_events_sent.labels(event=event["event_name"]).inc()
    return True


def _set_status(services: Services, event_id: str, status: str, **values: Any) -> None:
    with services.engine.begin() as conn:
        conn.execute(
            update(pixel_events).where(pixel_events.c.event_id == event_id).values(status=status, **values)
        )


def emit(
    services: Services,
    event_id: str,
    event_name: str,
    bot_id: int,
    data: dict[str, Any],
    payment_id: str | None = None,
) -> None:
    """Record, then send if this call recorded it. A failed send leaves it pending for the reconciler."""
    if record(services, event_id, event_name, bot_id, data, payment_id):
        send(services, event_id)
