"""``grimbots-stub``: stands for the Telegram Bot API, Meta CAPI and the payment gateway in the lab.

Every POST is answered after ``GRIMBOTS_STUB_LATENCY_MS`` with HTTP 500 at ``GRIMBOTS_STUB_ERROR_RATE``
(0.0-1.0), else 200 ``{"ok": true, ...}``; calls are counted per kind (the first path segment:
``telegram``, ``capi``, ``gateway``). ``GET /stats`` reports the counts; ``POST /_reset`` zeroes them;
``POST /_config {"latency_ms": .., "error_rate": ..}`` changes the behaviour of a running stub.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StubState:
    def __init__(self, latency_ms: float, error_rate: float, seed: int | None = None) -> None:
        self.latency_ms, self.error_rate = latency_ms, error_rate
        self.calls: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.random = random.Random(seed)

    def record(self, kind: str) -> bool:
        """Count one call; True if it should fail."""
        with self.lock:
            self.calls[kind] += 1
            failed = self.random.random() < self.error_rate
            if failed:
                self.errors[kind] += 1
            return failed

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": dict(self.calls),
                "errors": dict(self.errors),
                "total": sum(self.calls.values()),
                "latency_ms": self.latency_ms,
                "error_rate": self.error_rate,
            }


class StubHandler(BaseHTTPRequestHandler):
    server: StubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: drills send thousands of calls
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> dict[str, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/stats", ""):
            self._answer(200, self.server.state.stats())
        else:
            self._answer(404, {"ok": False, "error": "not_found"})

    def do_POST(self) -> None:
        state = self.server.state
        body = self._body()
        if self.path == "/_reset":
            with state.lock:
                state.calls.clear()
                state.errors.clear()
            return self._answer(200, state.stats())
        if self.path == "/_config":
            with state.lock:
                state.latency_ms = float(body.get("latency_ms", state.latency_ms))
                state.error_rate = float(body.get("error_rate", state.error_rate))
            return self._answer(200, state.stats())
        kind = self.path.strip("/").split("/", 1)[0] or "root"
        failed = state.record(kind)
        if state.latency_ms:
            time.sleep(state.latency_ms / 1000)
        if failed:
            return self._answer(500, {"ok": False, "error_code": 500, "description": "stub: injected error"})
        result_id = f"{kind}-{sum(state.calls.values())}"
        return self._answer(200, {"ok": True, "id": result_id, "result": {"id": result_id}})


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: StubState) -> None:
        super().__init__(address, StubHandler)
        self.state = state


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(prog="grimbots-stub", description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default=env.get("GRIMBOTS_STUB_BIND", "127.0.0.1:8081"))
    parser.add_argument("--latency-ms", type=float, default=float(env.get("GRIMBOTS_STUB_LATENCY_MS", "0")))
    parser.add_argument("--error-rate", type=float, default=float(env.get("GRIMBOTS_STUB_ERROR_RATE", "0")))
    parser.add_argument("--seed", type=int, default=None, help="random seed for reproducible errors")
    args = parser.parse_args(argv)
    host, _, port = args.bind.rpartition(":")
    server = StubServer(
        (host or "127.0.0.1", int(port)), StubState(args.latency_ms, args.error_rate, args.seed)
    )
    print(f"grimbots-stub listening on {host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
