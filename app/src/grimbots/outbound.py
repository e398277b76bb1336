"""Outbound calls: Telegram Bot API, Meta Conversions API, the payment gateway.

Every call goes to ``GRIMBOTS_OUTBOUND_URL`` (the stub in the lab, see ``grimbots.stub``); the real
APIs are never called. With no URL set, calls are only logged (a dry run).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from typing import Any

from .settings import Settings

log = logging.getLogger(__name__)


class OutboundError(RuntimeError):
    """The far end refused or failed the call; the caller's job should be retried."""


class OutboundClient:
    def __init__(self, settings: Settings) -> None:
        self._base = settings.outbound_url.rstrip("/")
        self._timeout = settings.outbound_timeout

    def send_message(self, token: str, chat_id: int, text: str) -> dict[str, Any]:
        return self._post(f"/telegram/bot{token}/sendMessage", {"chat_id": chat_id, "text": text})

    def set_webhook(self, token: str, url: str, secret_token: str) -> dict[str, Any]:
        body = {"url": url, "secret_token": secret_token, "allowed_updates": ["message", "callback_query"]}
        return self._post(f"/telegram/bot{token}/setWebhook", body)

    def send_pixel_event(self, pixel_id: str, event: dict[str, Any]) -> dict[str, Any]:
        return self._post(f"/capi/{pixel_id}/events", {"data": [event]})

    def create_charge(self, gateway: str, payment_id: str, amount_cents: int) -> dict[str, Any]:
        return self._post(
            f"/gateway/{gateway}/charges", {"reference": payment_id, "amount_cents": amount_cents}
        )

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if not self._base:
            shown = {k: ("<hidden>" if k == "secret_token" else v) for k, v in body.items()}
            log.info("outbound dry run: POST %s %s", re.sub(r"/bot[^/]+/", "/bot<token>/", path), shown)
            return {"ok": True, "dry_run": True}
        request = urllib.request.Request(
            self._base + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise OutboundError(f"POST {path}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise OutboundError(f"POST {path}: {exc}") from exc
