"""The dedup layers, by name. Each stop is counted in ``dedup_hits_total{layer}``.

Redis locks (fast, can fail open):
  ``update_id``      one Telegram update per bot, 20 s   (key namespaced by bot: the seed's flaw fixed)
  ``chat_start``     one ``/start`` funnel per chat, 10 s
  ``message_content`` one identical text per chat, 3 s
Database constraints (durable, cannot fail open):
  ``sent_message``   unique (bot_id, telegram_user_id, message_key, direction)
  ``webhook_inbox``  unique (gateway, dedup_key)
  ``state_transition`` UPDATE payments ... WHERE status = 'pending'
  ``event_id``       unique pixel_events.event_id (deterministic ids such as ``purchase_<payment_id>``)
  ``idempotency_key`` payments.id derived from (bot, idempotency key): a retried creation is one payment

A lock fails open (the work goes ahead when Redis errors) only because one of the database layers
stands behind it; ``dedup_lock_fail_open_total{layer}`` counts those occasions.
"""

from __future__ import annotations

import hashlib
import logging
from enum import StrEnum

from redis.exceptions import RedisError

from . import metrics
from .redis_connections import RedisConnections

log = logging.getLogger(__name__)


class Layer(StrEnum):
    UPDATE_ID = "update_id"
    CHAT_START = "chat_start"
    MESSAGE_CONTENT = "message_content"
    SENT_MESSAGE = "sent_message"
    WEBHOOK_INBOX = "webhook_inbox"
    STATE_TRANSITION = "state_transition"
    EVENT_ID = "event_id"
    IDEMPOTENCY_KEY = "idempotency_key"


LOCK_SECONDS = {Layer.UPDATE_ID: 20, Layer.CHAT_START: 10, Layer.MESSAGE_CONTENT: 3}


def hit(layer: Layer) -> None:
    """Record that ``layer`` stopped a duplicate."""
    metrics.dedup_hits.labels(layer=layer.value).inc()


def claim(redis: RedisConnections, layer: Layer, *parts: object) -> bool:
    """Take the ``layer`` lock for ``parts`` (SET NX EX). False means a duplicate, already counted.

    If Redis fails, the claim succeeds (fail open) and the database layer behind it decides.
    """
    key = redis.key("lock", layer.value, *parts)
    try:
        taken = redis.cache.set(key, "1", nx=True, ex=LOCK_SECONDS[layer])
    except RedisError as exc:
        log.warning("dedup lock %s failed open: %s", layer.value, exc)
        metrics.lock_fail_open.labels(layer=layer.value).inc()
        return True
    if not taken:
        hit(layer)
    return bool(taken)


def release(redis: RedisConnections, layer: Layer, *parts: object) -> None:
    """Drop a lock taken by :func:`claim`, so a retry of failed work is not mistaken for a duplicate."""
    try:
        redis.cache.delete(redis.key("lock", layer.value, *parts))
    except RedisError as exc:
        log.warning("dedup lock %s release failed: %s", layer.value, exc)


def content_digest(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]
