"""The hot-path HTTP routes: Telegram and payment webhooks, PIX creation, the ad-click redirect.

Every check that can reject a request runs before anything is written, so a 4xx leaves no state.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from redis.exceptions import RedisError

from . import dedup, metrics, payments, tracking
from .services import Services

log = logging.getLogger(__name__)
blueprint = Blueprint("hot_paths", __name__)


class ClientError(Exception):
    """A request the client got wrong: answered with ``status`` and ``{"error": code, "message": ...}``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


def current_services() -> Services:
    """The services of the app serving this request."""
    return current_app.extensions["grimbots"]


def _json_object(raw: bytes | None = None) -> dict[str, Any]:
    raw = request.get_data(cache=True) if raw is None else raw  # 413 beyond MAX_CONTENT_LENGTH
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientError(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ClientError(400, "malformed_json", "body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if value is None or value == "":
        raise ClientError(400, "missing_field", f"field {name!r} is required", field=name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ClientError(400, "invalid_field", f"field {name!r} has the wrong type", field=name)
    return value


@blueprint.post("/webhook/telegram/<int:bot_id>")
def telegram_webhook(bot_id: int) -> tuple[Response, int]:
    services = current_services()
    update = _json_object()
    update_id = _field(update, "update_id", int)
    if services.bot(bot_id=bot_id) is None:
        raise ClientError(404, "unknown_bot", f"no bot with id {bot_id}")
    if not dedup.claim(services.redis, dedup.Layer.UPDATE_ID, bot_id, update_id):
        return jsonify({"status": "duplicate"}), 200
    try:
        services.enqueue("tasks", "grimbots.tasks.handle_telegram_update", bot_id, update)
    except RedisError as exc:
        # Not stored anywhere: give the lock back and let Telegram redeliver.
        dedup.release(services.redis, dedup.Layer.UPDATE_ID, bot_id, update_id)
        metrics.telegram_errors.labels(error_type="queue_unavailable").inc()
        log.error("telegram update %s/%s not queued: %s", bot_id, update_id, exc)
        return jsonify({"error": "queue_unavailable", "message": "try again later"}), 503
    metrics.telegram_messages_received.inc()
    return jsonify({"status": "queued"}), 200


@blueprint.post("/webhook/payment/<gateway>")
def payment_webhook(gateway: str) -> tuple[Response, int]:
    services = current_services()
    secret = services.settings.gateway_secrets.get(gateway)
    if secret is None:
        raise ClientError(404, "unknown_gateway", f"no gateway named {gateway!r}")
    raw = request.get_data(cache=True)
    signature = request.headers.get("X-Signature", "")
    if not signature:
        raise ClientError(401, "missing_signature", "X-Signature header is required")
    if not payments.signature_ok(secret, raw, signature):
        metrics.webhook_events.labels(gateway=gateway, result="bad_signature").inc()
        raise ClientError(401, "bad_signature", "X-Signature does not match the body")
    event = _json_object(raw)
    for name in ("event_id", "payment_id", "status"):
        _field(event, name, str)
    created = payments.accept_webhook(services, gateway, event, raw)
    return jsonify({"status": "queued" if created else "duplicate"}), 200


@blueprint.post("/api/pix")
def create_pix() -> tuple[Response, int]:
    services = current_services()
    body = _json_object()
    bot_id = _field(body, "bot_id", int)
    user_id = _field(body, "telegram_user_id", int)
    amount = _field(body, "amount_cents", int)
    if amount <= 0:
        raise ClientError(400, "invalid_field", "amount_cents must be positive", field="amount_cents")
    gateway = body.get("gateway")
    if gateway is not None and gateway not in services.settings.gateway_secrets:
        raise ClientError(400, "unknown_gateway", f"no gateway named {gateway!r}", field="gateway")
    key = body.get("idempotency_key") or request.headers.get("Idempotency-Key")
    if services.bot(bot_id=bot_id) is None:
        raise ClientError(404, "unknown_bot", f"no bot with id {bot_id}")
    payment_id, created = payments.create(services, bot_id, user_id, amount, gateway, key)
    return jsonify({"payment_id": payment_id, "status": "pending"}), 201 if created else 200


@blueprint.get("/go/<slug>")
def ad_click(slug: str) -> Response:
    services = current_services()
    bot = services.bot(slug=slug)
    if bot is None:
        raise ClientError(404, "unknown_slug", f"no bot for link {slug!r}")
    data = {k: request.args[k][:256] for k in tracking.TRACKED_PARAMS if request.args.get(k)}
    data.update({k: request.cookies[k][:256] for k in tracking.TRACKED_COOKIES if request.cookies.get(k)})
    click_id = tracking.new_click_id(data.get("fbclid"))
    tracking.store_click(services.redis, click_id, data, services.settings.tracking_ttl_seconds)
    try:
        services.enqueue(
            "tasks", "grimbots.tasks.emit_pixel_event", f"pageview_{click_id}", "PageView", bot["id"], data
        )
    except RedisError as exc:  # the visitor still gets to the bot; only the PageView is lost
        log.warning("PageView for click %s not queued: %s", click_id, exc)
    link = (
        f"{services.settings.telegram_link_base}/{bot['username']}?start={tracking.start_payload(click_id)}"
    )
    return redirect(link, code=302)
