"""Test double of an app server and of a Patroni node, for the haproxy scenario (stdlib only).

backend_double.py app --name NAME [--port 8000]
    HTTP/1.1 on PORT, as gunicorn would answer HAProxy:
    GET /health, /livez      200 {"status": "healthy", "server": NAME}
    any other GET            200 {"server": NAME, "path": ...}
    POST/PUT (any path)      200 {"server": NAME, "path": ..., "bytes": <body length>, "sha256": ...}
    `?delay=<seconds>` (at most 5) holds the answer that long, so that requests are in flight when
    the test kills the process. Every answer carries `X-Backend-Server: NAME`.

backend_double.py patroni --name NAME --role primary|replica [--rest-port 8008] [--pg-port 5432]
    HTTP on REST-PORT: GET /primary is 200 on the primary and 503 on a replica, /replica the other
    way round (Patroni's own answers); TCP on PG-PORT: a banner line naming the host and its role,
    then an echo of every line received, as a stand-in for PostgreSQL behind HAProxy's TCP proxy.
"""

import argparse
import hashlib
import json
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

MAX_DELAY = 5.0


class AppHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_name_label = "unnamed"

    def log_message(self, format: str, *args) -> None:
        pass  # the journal would fill with one line per request of the load loops

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, payload: dict) -> None:
        query = parse_qs(urlsplit(self.path).query)
        delay = min(float(query.get("delay", ["0"])[0] or 0), MAX_DELAY)
        if delay > 0:
            time.sleep(delay)
        forwarded = {
            "forwarded_for": self.headers.get("X-Forwarded-For"),
            "forwarded_proto": self.headers.get("X-Forwarded-Proto"),
        }
        raw = json.dumps({"server": self.server_name_label, **forwarded, **payload}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("X-Backend-Server", self.server_name_label)
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/health", "/livez"):
            self._answer(200, {"status": "healthy"})
        else:
            self._answer(200, {"path": path})

    def do_POST(self) -> None:
        body = self._read_body()
        digest = hashlib.sha256(body).hexdigest()
        self._answer(200, {"path": urlsplit(self.path).path, "bytes": len(body), "sha256": digest})

    do_PUT = do_POST


ROLE_FILE = Path("/run/backend-double-role")


class RestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    started_as = "replica"

    @property
    def role(self) -> str:
        try:
            return ROLE_FILE.read_text().strip()
        except FileNotFoundError:
            return self.started_as

    def log_message(self, format: str, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("/primary", "/leader", "/read-write"):
            status = 200 if self.role == "primary" else 503
        elif path == "/replica":
            status = 200 if self.role == "replica" else 503
        else:
            status = 200 if path in ("/", "/health", "/patroni") else 404
        raw = json.dumps({"role": self.role, "state": "running"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class Banner(socketserver.StreamRequestHandler):
    banner = b""

    def handle(self) -> None:
        self.wfile.write(self.banner)
        for line in self.rfile:
            self.wfile.write(line)


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["app", "patroni"])
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--role", choices=["primary", "replica"], default="replica")
    parser.add_argument("--rest-port", type=int, default=8008)
    parser.add_argument("--pg-port", type=int, default=5432)
    args = parser.parse_args()

    if args.mode == "app":
        AppHandler.server_name_label = args.name
        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer(("0.0.0.0", args.port), AppHandler).serve_forever()
        return

    RestHandler.started_as = args.role
    Banner.banner = f"grimbots-test-double host={args.name} role={args.role}\n".encode()
    pg = TCPServer(("0.0.0.0", args.pg_port), Banner)
    threading.Thread(target=pg.serve_forever, daemon=True).start()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("0.0.0.0", args.rest_port), RestHandler).serve_forever()


if __name__ == "__main__":
    main()
