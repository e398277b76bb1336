"""Phase-1 traffic for the progression test: /start updates, PIX payments and their signed webhooks
(some delivered twice), sent to the app on 127.0.0.1:8000. Bounded: it stops after its fixed counts."""

import argparse
import hashlib
import hmac
import json
import ssl
import urllib.request

BASE = "http://127.0.0.1:8000"
# --insecure: the lab load balancer's certificate is self-signed.
CONTEXT: ssl.SSLContext | None = None


def post(path: str, raw: bytes, headers: dict[str, str] | None = None) -> dict:
    request = urllib.request.Request(
        BASE + path, data=raw, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=10, context=CONTEXT) as response:
        return json.loads(response.read())


def main() -> None:
    global BASE, CONTEXT
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", required=True, help="the stubpay gateway's webhook secret")
    parser.add_argument("--telegram-secret", required=True, help="the Telegram webhooks' master secret")
    parser.add_argument("--updates", type=int, default=600)
    parser.add_argument("--payments", type=int, default=200)
    # Shifts update ids, chats and event ids, so that a second batch (a later phase) is new data.
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--base", default=BASE, help="the app, or the load balancer in front of it")
    parser.add_argument("--insecure", action="store_true", help="accept a self-signed certificate")
    args = parser.parse_args()
    BASE = args.base.rstrip("/")
    if args.insecure:
        CONTEXT = ssl._create_unverified_context()
    o = args.offset
    for n in range(1, args.updates + 1):
        update = {
            "update_id": 700000 + o + n,
            "message": {"message_id": n, "chat": {"id": 50000 + o + n}, "text": "/start"},
        }
        bot = n % 30 + 1
        # The bot's secret token, as the app derives it (grimbots.telegram_auth) and Telegram sends it.
        token = hmac.new(args.telegram_secret.encode(), f"telegram-webhook:{bot}".encode(), hashlib.sha256)
        headers = {"X-Telegram-Bot-Api-Secret-Token": token.hexdigest()}
        post(f"/webhook/telegram/{bot}", json.dumps(update).encode(), headers)
    for n in range(1, args.payments + 1):
        body = {
            "bot_id": n % 30 + 1,
            "telegram_user_id": 50000 + o + n,
            "amount_cents": 1990,
            "idempotency_key": f"traffic-{o + n}",
        }
        payment = post("/api/pix", json.dumps(body).encode())
        raw = json.dumps(
            {"event_id": f"prog-{o + n}", "payment_id": payment["payment_id"], "status": "paid"}
        ).encode()
        signature = "sha256=" + hmac.new(args.secret.encode(), raw, hashlib.sha256).hexdigest()
        for _ in range(2 if n % 5 == 0 else 1):  # every fifth webhook is delivered twice
            post("/webhook/payment/stubpay", raw, {"X-Signature": signature})


if __name__ == "__main__":
    main()
