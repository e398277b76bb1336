"""Sending a Telegram message at most once per ``message_key``: content lock, then the unique row.

A row stays ``sending`` only if its worker died (or lost the database) between the insert and the
final update. The reconciler hands such rows to :func:`finish`, which sends the message unless the
marker that :func:`send_once` writes to the cache right after a successful call says it went out.
The one window left is a worker killed between Telegram's answer and that marker.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from sqlalchemy import RowMapping, delete, select, update

from . import dedup, metrics
from .services import Services
from .storage import insert_ignoring_conflict, sent_messages, utcnow

log = logging.getLogger(__name__)
# How long the "went out" marker of a message is kept: the reconciler finishes a stuck row about a
# minute after its worker died (every 30 s, once a job timeout has passed); six hours cover a
# reconciler that was down for a while, and keep the cache (no eviction) small: a few hundred
# thousand messages a day are a few MB of markers.
SENT_MARKER_SECONDS = 6 * 3600


def _marker(services: Services, bot_id: int, chat_id: int, message_key: str) -> str:
    return services.redis.key("sent", bot_id, chat_id, dedup.content_digest(message_key))


def _mark_sent(services: Services, bot_id: int, chat_id: int, message_key: str) -> None:
    try:
        services.redis.cache.set(_marker(services, bot_id, chat_id, message_key), 1, ex=SENT_MARKER_SECONDS)
    except RedisError as exc:  # the row's update below is the record; the marker only helps finish()
        log.warning("sent marker for %s/%s/%s not written: %s", bot_id, chat_id, message_key, exc)


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
    _mark_sent(services, bot["id"], chat_id, message_key)
    with services.engine.begin() as conn:
        conn.execute(update(sent_messages).where(where).values(status="sent"))
    metrics.telegram_messages_sent.inc()
    return True


def finish(services: Services, message_id: int) -> str:
    """Complete a ``sending`` row left by a dead worker: send it unless it went out, then mark it sent."""
    with services.engine.connect() as conn:
        row = conn.execute(select(sent_messages).where(sent_messages.c.id == message_id)).mappings().first()
    if row is None or row["status"] != "sending":
        return "missing" if row is None else "already_sent"
    bot = services.bot(bot_id=row["bot_id"])
    assert bot is not None, "sent_messages.bot_id is a foreign key"
    chat_id, message_key = row["telegram_user_id"], row["message_key"]
    try:
        went_out = bool(services.redis.cache.exists(_marker(services, bot["id"], chat_id, message_key)))
    except RedisError:
        went_out = False
    if not went_out:
        services.outbound.send_message(bot["token"], chat_id, row["text"])
        _mark_sent(services, bot["id"], chat_id, message_key)
        metrics.telegram_messages_sent.inc()
    with services.engine.begin() as conn:
        conn.execute(
            update(sent_messages)
            .where(sent_messages.c.id == message_id, sent_messages.c.status == "sending")
            .values(status="sent")
        )
    return "recorded" if went_out else "sent"
