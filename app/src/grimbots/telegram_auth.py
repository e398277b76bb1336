"""Telegram webhook authentication: a secret token per bot, derived from one master secret.

Telegram sends the ``secret_token`` given to ``setWebhook`` in the ``X-Telegram-Bot-Api-Secret-Token``
header of every update. Each bot's token is ``HMAC-SHA256(master, "telegram-webhook:<bot id>")`` in
hex (64 characters from Telegram's allowed set), so one vault secret covers every bot, a token
leaked from one bot's registration opens no other bot's webhook, and nothing new is stored.
``grimbots-app telegram-webhook`` registers a bot's webhook with its token.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Telegram-Bot-Api-Secret-Token"


def secret_token(master: str, bot_id: int) -> str:
    """The ``secret_token`` of bot ``bot_id``."""
    return hmac.new(master.encode(), f"telegram-webhook:{bot_id}".encode(), hashlib.sha256).hexdigest()


def token_ok(master: str, bot_id: int, header: str) -> bool:
    """Constant-time check of the header's value (non-ASCII characters are a mismatch, not an error)."""
    return hmac.compare_digest(secret_token(master, bot_id).encode(), header.encode("utf-8", "replace"))
