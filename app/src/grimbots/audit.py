"""The audit: counts duplicated effects and accepted work not yet done.

Duplicates are counted from the data itself, not from the constraints that should prevent them, so
the audit also catches a database restored or migrated without its unique indexes:
- messages: more than one row per (bot, user, message_key, direction);
- paid transitions: more than one inbox event that won the ``pending -> paid`` move for a payment;
- purchase events: more than one Purchase event for a payment (e.g. random event ids).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, Engine, Table, func, select, true

from .storage import pixel_events, sent_messages, utcnow, webhook_inbox


@dataclass
class AuditReport:
    duplicate_messages: int
    duplicate_paid_transitions: int
    duplicate_purchase_events: int
    unprocessed_webhooks: int
    stale_unprocessed_webhooks: int
    messages: int
    paid_transitions: int
    purchase_events: int

    @property
    def duplicates(self) -> int:
        return self.duplicate_messages + self.duplicate_paid_transitions + self.duplicate_purchase_events

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "duplicates": self.duplicates}

    def text(self) -> str:
        lines = [f"{name:28} {value}" for name, value in self.as_dict().items()]
        verdict = "OK: no duplicated effects" if not self.duplicates else "FAIL: duplicated effects found"
        return "\n".join([*lines, verdict])


def _extra_copies(
    engine: Engine, table: Table, *group: ColumnElement, where: ColumnElement[bool] | None = None
) -> tuple[int, int]:
    """(rows beyond the first in each group, all rows) for the grouped columns."""
    per_group = (
        select(func.count().label("n")).select_from(table).where(where if where is not None else true())
    )
    per_group = per_group.group_by(*group).subquery()
    with engine.connect() as conn:
        extra, total = conn.execute(
            select(func.coalesce(func.sum(per_group.c.n - 1), 0), func.coalesce(func.sum(per_group.c.n), 0))
        ).one()
    return int(extra), int(total)


def run(engine: Engine, stale_seconds: int = 60) -> AuditReport:
    m = sent_messages.c
    dup_messages, messages = _extra_copies(
        engine, sent_messages, m.bot_id, m.telegram_user_id, m.message_key, m.direction
    )
    w = webhook_inbox.c
    dup_paid, paid = _extra_copies(engine, webhook_inbox, w.payment_id, where=w.result == "paid")
    p = pixel_events.c
    dup_purchase, purchases = _extra_copies(
        engine, pixel_events, p.payment_id, where=p.event_name == "Purchase"
    )
    cutoff = utcnow() - timedelta(seconds=stale_seconds)
    with engine.connect() as conn:
        unprocessed = conn.execute(select(func.count()).where(w.processed_at.is_(None))).scalar_one()
        stale = conn.execute(
            select(func.count()).where(w.processed_at.is_(None), w.received_at <= cutoff)
        ).scalar_one()
    return AuditReport(dup_messages, dup_paid, dup_purchase, unprocessed, stale, messages, paid, purchases)
