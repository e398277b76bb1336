"""Ad-click tracking: what ``/go/<slug>`` learns about a click, kept in the cache Redis for 30 days,
and the ``/start`` payload that carries the click id into the bot (Telegram allows 64 characters)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import time
import uuid

from redis.exceptions import RedisError

from .redis_connections import RedisConnections

log = logging.getLogger(__name__)

TRACKED_PARAMS = ("fbclid", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
TRACKED_COOKIES = ("_fbp", "_fbc")


def new_click_id(fbclid: str | None) -> str:
    """32 hex characters. The same fbclid gives the same click id, so a reload is one click."""
    if fbclid:
        return hashlib.sha256(fbclid.encode()).hexdigest()[:32]
    return uuid.uuid4().hex


def start_payload(click_id: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(click_id)).rstrip(b"=").decode()


def click_id_from_payload(payload: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


def store_click(redis: RedisConnections, click_id: str, data: dict[str, str], ttl: int) -> bool:
    """Keep the click's tracking data; False (logged) if the cache Redis failed. Never raises."""
    key = redis.key("click", click_id)
    try:
        pipe = redis.cache.pipeline(transaction=False)
        pipe.hset(key, mapping={**data, "ts": str(int(time.time()))})
        pipe.expire(key, ttl)
        pipe.execute()
    except RedisError as exc:
        log.warning("click tracking not stored: %s", exc)
        return False
    return True


def load_click(redis: RedisConnections, click_id: str) -> dict[str, str]:
    try:
        return redis.cache.hgetall(redis.key("click", click_id))
    except RedisError as exc:
        log.warning("click tracking not read: %s", exc)
        return {}
