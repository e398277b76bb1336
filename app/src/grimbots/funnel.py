"""The bot side of a Telegram update (run by a ``tasks`` worker): the ``/start`` funnel, text replies,
and the buy button, which opens a PIX payment."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from sqlalchemy import RowMapping

from . import dedup, metrics, payments, pixel, tracking
from .messages import send_once
from .services import Services

log = logging.getLogger(__name__)

# The buy button's callback data: "buy:<amount in cents>", ASCII digits, 1 to 999,999,999.
BUY = re.compile(r"buy:([1-9][0-9]{0,8})")


def welcome_text(bot: RowMapping) -> str:
    return f"Welcome to @{bot['username']}! Here is what we have for you."


def offer_text(bot: RowMapping) -> str:
    return "Tap BUY to get access now (PIX, instant delivery)."


def handle_update(services: Services, bot_id: int, update: dict[str, Any]) -> str:
    """Act on one update; returns what was done (for logs and tests)."""
    started = time.perf_counter()
    bot = services.bot(bot_id=bot_id)
    if bot is None:
        metrics.telegram_errors.labels(error_type="unknown_bot").inc()
        return "unknown_bot"
    try:
        return _dispatch(services, bot, update)
    finally:
        metrics.telegram_processing.observe(time.perf_counter() - started)


def _dispatch(services: Services, bot: RowMapping, update: dict[str, Any]) -> str:
    if callback := update.get("callback_query"):
        data = str(callback.get("data", ""))
        chat_id = int(callback["from"]["id"])
        if buy := BUY.fullmatch(data):
            # One payment per button press: Telegram redelivers a callback with the same id.
            key = f"callback:{callback.get('id') or update.get('update_id')}"
            payments.create(services, bot["id"], chat_id, int(buy[1]), gateway=None, idempotency_key=key)
            return "payment_created"
        return "ignored"
    message = update.get("message") or {}
    text = str(message.get("text", ""))
    if not text or "chat" not in message:
        return "ignored"
    chat_id = int(message["chat"]["id"])
    if text == "/start" or text.startswith("/start "):
        return start_funnel(services, bot, chat_id, text[len("/start ") :].strip())
    key = f"reply:{message.get('message_id', dedup.content_digest(text))}"
    send_once(services, bot, chat_id, key, f"You said: {text[:200]}")
    return "replied"


def start_funnel(services: Services, bot: RowMapping, chat_id: int, payload: str) -> str:
    """Welcome, offer, ViewContent: once per lead, whether Telegram sends ``/start`` once or twice."""
    if not dedup.claim(services.redis, dedup.Layer.CHAT_START, bot["id"], chat_id):
        return "duplicate"
    try:
        send_once(services, bot, chat_id, "start:welcome", welcome_text(bot))
        send_once(services, bot, chat_id, "start:offer", offer_text(bot))
        click_id = tracking.click_id_from_payload(payload) if payload else None
        data: dict[str, Any] = {"content_name": bot["username"]}
        if click_id:
            data.update(tracking.load_click(services.redis, click_id))
        pixel.emit(services, f"viewcontent_{bot['id']}_{chat_id}", "ViewContent", bot["id"], data)
    except Exception:
        # Let the retry run the funnel: the unique rows, not this lock, stop what already went out.
        dedup.release(services.redis, dedup.Layer.CHAT_START, bot["id"], chat_id)
        raise
    return "funnel_sent"
