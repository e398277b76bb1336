"""Sending a Telegram message at most once per ``message_key``: content lock, then the unique row."""

from __future__ import annotations

from sqlalchemy import RowMapping, delete, update

from . import dedup, metrics
from .services import Services
from .storage import insert_ignoring_conflict, sent_messages, utcnow


def send_once(services: Services, bot: RowMapping, chat_id: int, message_key: str, text: str) -> bool:
    """Send ``text`` to ``chat_id`` unless a message with this key went (or is going) out already.

    The row is written (status ``sending``) before the call, so a racing worker hits the unique
    constraint; a failed call removes the row again, so the retry can send.
    """
    digest = dedup.content_digest(text)
    if not dedup.claim(services.redis, dedup.Layer.MESSAGE_CONTENT, bot["id"], chat_id, digest):
        return False
    row = {
        "bot_id": bot["id"],
        "telegram_user_id": chat_id,
        "message_key": message_key,
        "direction": "out",
        "text": text,
        "status": "sending",
        "created_at": utcnow(),
    }
    with services.engine.begin() as conn:
        if not insert_ignoring_conflict(conn, sent_messages, row):
            dedup.hit(dedup.Layer.SENT_MESSAGE)
            return False
    where = (
        (sent_messages.c.bot_id == bot["id"])
        & (sent_messages.c.telegram_user_id == chat_id)
        & (sent_messages.c.message_key == message_key)
    )
    try:
        services.outbound.send_message(bot["token"], chat_id, text)
    except Exception as exc:
        metrics.telegram_errors.labels(error_type=type(exc).__name__).inc()
        with services.engine.begin() as conn:
            conn.execute(delete(sent_messages).where(where))
        dedup.release(services.redis, dedup.Layer.MESSAGE_CONTENT, bot["id"], chat_id, digest)
        raise
    with services.engine.begin() as conn:
        conn.execute(update(sent_messages).where(where).values(status="sent"))
    metrics.telegram_messages_sent.inc()
    return True
