"""The hot-path HTTP routes: Telegram and payment webhooks, PIX creation, the ad-click redirect.

Every check that can reject a request runs before anything is written, so a 4xx leaves no state.
Fields are checked for type, range and length against the columns they land in, and strings for NUL
characters and lone surrogates (which PostgreSQL refuses), so bad input gets a 4xx, never a 500.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from redis.exceptions import RedisError

from . import dedup, metrics, payments, telegram_auth, tracking
from .services import Services

log = logging.getLogger(__name__)
blueprint = Blueprint("hot_paths", __name__)

# Ranges of the integer columns (Integer, BigInteger) the fields are written to.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# Longest idempotency key taken (it is hashed, not stored).
IDEMPOTENCY_KEY_MAX = 128
# Longest ad-click slug looked up (bots.slug) and tracked value kept.
SLUG_MAX = 64
TRACKED_VALUE_MAX = 256


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
    except RecursionError as exc:
        raise ClientError(400, "malformed_json", "body is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientError(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ClientError(400, "malformed_json", "body must be a JSON object")
    return body


def _invalid(name: str, problem: str) -> ClientError:
    return ClientError(400, "invalid_field", f"field {name!r} {problem}", field=name)


def _text(name: str, value: Any, max_length: int) -> str:
    """``value`` if it is a string that fits its column and that PostgreSQL takes."""
    if not isinstance(value, str):
        raise _invalid(name, "must be a string")
    if len(value) > max_length:
        raise _invalid(name, f"is longer than {max_length} characters")
    if "\x00" in value:
        raise _invalid(name, "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate (JSON "\ud800")
        raise _invalid(name, "is not valid Unicode") from exc
    return value


def _field(
    body: dict[str, Any], name: str, kind: type, *, high: int = INT64_MAX, low: int = 0, max_length: int = 0
) -> Any:
    """A required field of ``kind`` (int: between ``low`` and ``high``; str: at most ``max_length``
    characters)."""
    value = body.get(name)
    if value is None or value == "":
        raise ClientError(400, "missing_field", f"field {name!r} is required", field=name)
    if kind is str:
        return _text(name, value, max_length)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(name, "must be an integer")
    if not low <= value <= high:
        raise _invalid(name, f"must be between {low} and {high}")
    return value


def _optional_text(body: dict[str, Any], name: str, max_length: int) -> str | None:
    value = body.get(name)
    return None if value is None else _text(name, value, max_length)


@blueprint.post(f"/webhook/telegram/<int(max={INT32_MAX}):bot_id>")
def telegram_webhook(bot_id: int) -> tuple[Response, int]:
    services = current_services()
    master = services.settings.telegram_webhook_secret
    if not master:
        # Fail closed, and with a 5xx so that Telegram keeps the update until the setting is fixed.
        log.error("telegram update for bot %s refused: GRIMBOTS_TELEGRAM_WEBHOOK_SECRET is not set", bot_id)
        return jsonify({"error": "not_configured", "message": "telegram webhooks are not configured"}), 503
    if not telegram_auth.token_ok(master, bot_id, request.headers.get(telegram_auth.HEADER, "")):
        metrics.telegram_errors.labels(error_type="bad_secret_token").inc()
        raise ClientError(401, "bad_secret_token", f"{telegram_auth.HEADER} is missing or wrong")
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
    # The inbox's columns: dedup_key String(128), payment_id and status String(32).
    for name, max_length in (("event_id", 128), ("payment_id", 32), ("status", 32)):
        _field(event, name, str, max_length=max_length)
    created = payments.accept_webhook(services, gateway, event, raw)
    return jsonify({"status": "queued" if created else "duplicate"}), 200


@blueprint.post("/api/pix")
def create_pix() -> tuple[Response, int]:
    services = current_services()
    body = _json_object()
    bot_id = _field(body, "bot_id", int, high=INT32_MAX)
    user_id = _field(body, "telegram_user_id", int, low=1)
    amount = _field(body, "amount_cents", int, low=1, high=INT32_MAX)
    gateway = _optional_text(body, "gateway", 32)
    if gateway is not None and gateway not in services.settings.gateway_secrets:
        raise ClientError(400, "unknown_gateway", f"no gateway named {gateway!r}", field="gateway")
    key = _optional_text(body, "idempotency_key", IDEMPOTENCY_KEY_MAX) or _text(
        "Idempotency-Key", request.headers.get("Idempotency-Key", ""), IDEMPOTENCY_KEY_MAX
    )
    if not key:
        # Without one a retried request (the client's, or HAProxy's on a dropped connection) would
        # open a second payment.
        raise ClientError(
            400, "missing_idempotency_key", "an idempotency_key field or Idempotency-Key header is required"
        )
    if services.bot(bot_id=bot_id) is None:
        raise ClientError(404, "unknown_bot", f"no bot with id {bot_id}")
    try:
        payment_id, created = payments.create(services, bot_id, user_id, amount, gateway, key)
    except payments.KeyReused as exc:
        raise ClientError(409, "idempotency_key_reused", str(exc)) from exc
    except payments.ChargeNotQueued as exc:
        log.error("%s", exc)
        body = {"error": "queue_unavailable", "message": "payment stored; send the same request again later"}
        return jsonify({**body, "payment_id": exc.payment_id}), 503
    return jsonify({"payment_id": payment_id, "status": "pending"}), 201 if created else 200


@blueprint.get("/go/<slug>")
def ad_click(slug: str) -> Response:
    services = current_services()
    # A slug no bot can have is not looked up (a NUL would be a database error, not a miss).
    bot = services.bot(slug=slug) if len(slug) <= SLUG_MAX and "\x00" not in slug else None
    if bot is None:
        raise ClientError(404, "unknown_slug", f"no bot for link {slug[:SLUG_MAX]!r}")
    data = {k: _tracked(request.args[k]) for k in tracking.TRACKED_PARAMS if request.args.get(k)}
    data.update({k: _tracked(request.cookies[k]) for k in tracking.TRACKED_COOKIES if request.cookies.get(k)})
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


def _tracked(value: str) -> str:
    """A tracking parameter as kept: NUL characters dropped, cut to TRACKED_VALUE_MAX characters."""
    return value.replace("\x00", "")[:TRACKED_VALUE_MAX]
