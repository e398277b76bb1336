"""RQ job entry points: small functions RQ imports by name; the work lives in the domain modules.

Jobs reach the process's connections through :func:`grimbots.services.current`.
"""

from __future__ import annotations

from typing import Any

from . import funnel, messages, payments, pixel
from .services import current


def handle_telegram_update(bot_id: int, update: dict[str, Any]) -> str:
    """Queue ``tasks``: one Telegram update (``/start`` funnel, reply, buy button)."""
    return funnel.handle_update(current(), bot_id, update)


def create_charge(payment_id: str) -> None:
    """Queue ``gateway``: the PIX charge for a pending payment."""
    payments.create_charge(current(), payment_id)


def process_payment_event(inbox_id: int) -> str:
    """Queue ``webhook``: one stored payment notification."""
    return payments.process_inbox_event(current(), inbox_id)


def emit_pixel_event(event_id: str, event_name: str, bot_id: int, data: dict[str, Any]) -> None:
    """Queue ``tasks``: record and send a pixel event (the PageView of an ad click)."""
    pixel.emit(current(), event_id, event_name, bot_id, data)


def finish_message(message_id: int) -> str:
    """Queue ``tasks``: a message row left ``sending`` by a dead worker (used by the reconciler)."""
    return messages.finish(current(), message_id)


def send_pixel_event(event_id: str) -> None:
    """Queue ``tasks``: send an already recorded event (used by the reconciler)."""
    pixel.send(current(), event_id)
