"""Micro-benchmark: the hot paths against a bare Flask "return 200", one gunicorn process each.

    .venv/bin/python app/bench/run.py [--seconds 8] [--connections 8]

Starts its own Redis and SQLite database in a temp dir, two gunicorn servers (1 worker, gthread) on
127.0.0.1, and drives each endpoint with ``wrk`` (Debian package ``wrk``) for a fixed time. No RQ
workers run: the measured cost is the request path only (validation, dedup, storage, enqueue).
Everything it started is stopped at the end. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # reuse the test suite's server helpers

from sqlalchemy import create_engine  # noqa: E402
from tests.servers import HOST, ServerGroup, free_port, start_redis, wait_for  # noqa: E402

from grimbots import migrate, payments, telegram_auth  # noqa: E402
from grimbots.cli import main as grimbots_app  # noqa: E402

SECRET = "bench-secret"
PAYMENT_BODIES = 40000

DONE = """
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
               + summary.errors.write + summary.errors.timeout
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "p50_ms": %f, "p95_ms": %f, "errors": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000, errors))
end
"""

TELEGRAM = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"update_id": %d, "message": {"message_id": %d, "chat": {"id": %d}, "text": "hi"}}',
    counter + THREAD_OFFSET, counter, counter % 5000)
  local headers = {["Content-Type"] = "application/json", ["X-Telegram-Bot-Api-Secret-Token"] = "BOT_TOKEN"}
  return wrk.format("POST", "/webhook/telegram/1", headers, body)
end
"""


def payment_script(path: Path) -> None:
    """wrk cannot compute an HMAC: pre-sign distinct webhook bodies and cycle through them."""
    lines = ["bodies = {", *_signed_bodies(), "}", "i = 0", _PAYMENT_REQUEST]
    path.write_text("\n".join(lines) + DONE)


def _signed_bodies():
    run = uuid.uuid4().hex[:8]
    for n in range(PAYMENT_BODIES):
        raw = json.dumps({"event_id": f"{run}-{n}", "payment_id": f"p{n % 1000}", "status": "paid"})
        yield "{%s, %s}," % (json.dumps(raw), json.dumps(payments.sign(SECRET, raw.encode())))


_PAYMENT_REQUEST = """
request = function()
  i = i % #bodies + 1
  local headers = {["Content-Type"] = "application/json", ["X-Signature"] = bodies[i][2]}
  return wrk.format("POST", "/webhook/payment/stubpay", headers, bodies[i][1])
end
"""


def gunicorn(group: ServerGroup, name: str, target: str, env: dict[str, str]) -> str:
    port = free_port()
    env = env | {
        "GRIMBOTS_BIND": f"{HOST}:{port}",
        "GRIMBOTS_WEB_WORKERS": "1",
        "GRIMBOTS_LOG_LEVEL": "WARNING",
    }
    gunicorn_bin = str(Path(sys.executable).parent / "gunicorn")
    group.spawn(
        [gunicorn_bin, "-c", "python:grimbots.gunicorn_conf", "--chdir", str(HERE), target], name, env=env
    )
    base = f"http://{HOST}:{port}"
    wait_for(
        lambda: subprocess.run(["curl", "-sf", "-o", "/dev/null", base + "/ready"]).returncode in (0, 22),
        name,
    )
    return base


def wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script), url],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
    ).stdout  # fmt: skip
    return json.loads(out.split("RESULT ", 1)[1].splitlines()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="per endpoint (plus a 2 s warm-up)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--max-requests",
        type=int,
        default=0,
        help="gunicorn worker recycling (0 = off, the steady state; the app default is 1000)",
    )
    args = parser.parse_args()
    group = ServerGroup()
    try:
        redis_url = f"redis://{HOST}:{start_redis(group, 'redis')}/0"
        db = f"sqlite:///{group.workdir}/bench.db"
        env = dict(os.environ) | {
            "GRIMBOTS_DATABASE_URL": db, "GRIMBOTS_REDIS_CACHE_URL": redis_url, "GRIMBOTS_REDIS_QUEUE_URL": redis_url,
            "GRIMBOTS_GATEWAY_SECRETS": f"stubpay:{SECRET}", "GRIMBOTS_MAX_REQUESTS": str(args.max_requests),
            "GRIMBOTS_TELEGRAM_WEBHOOK_SECRET": SECRET,
        }  # fmt: skip
        os.environ.update(env)
        migrate.upgrade(create_engine(db))
        grimbots_app(["seed-bots", "--count", "3"])
        bare = gunicorn(group, "bare", "bare:app", env)
        app = gunicorn(group, "grimbots", "grimbots.web:create_app()", env)

        scripts = {}
        for name, body in {
            "bare": "",
            "go": "wrk.path = '/go/bot1?utm_source=bench'\n",
            "telegram": TELEGRAM.replace("THREAD_OFFSET", str(uuid.uuid4().int % 10**9)).replace(
                "BOT_TOKEN", telegram_auth.secret_token(SECRET, 1)
            ),
        }.items():
            scripts[name] = group.workdir / f"{name}.lua"
            scripts[name].write_text(body + DONE)
        scripts["payment"] = group.workdir / "payment.lua"
        payment_script(scripts["payment"])

        cases = [
            ("bare Flask `GET /` (baseline)", bare, "bare"),
            ("`GET /go/<slug>` (tracking + PageView enqueue, 302)", app, "go"),
            ("`POST /webhook/telegram/<bot_id>` (update-id lock + enqueue)", app, "telegram"),
            ("`POST /webhook/payment/<gateway>` (HMAC + inbox insert + enqueue)", app, "payment"),
        ]
        print("| endpoint | req/s | P50 ms | P95 ms | errors | req/s vs bare | P50 vs bare |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        baseline: dict[str, float] = {}
        for label, base, name in cases:
            wrk(base, scripts[name], 2, args.connections)  # warm-up
            result = wrk(base, scripts[name], args.seconds, args.connections)
            rps = result["requests"] / result["seconds"]
            baseline = baseline or {"rps": rps, "p50": result["p50_ms"]}
            print(
                f"| {label} | {rps:.0f} | {result['p50_ms']:.2f} | {result['p95_ms']:.2f} | {result['errors']} "
                f"| {rps / baseline['rps']:.2f} | {result['p50_ms'] / baseline['p50']:.1f}x |",
                flush=True,
            )
    finally:
        group.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
