"""Bounded waits on PostgreSQL, so a frozen server cannot hang the app.

libpq has no read timeout: a query sent to a server whose processes are frozen (a paused VM or
container, a stuck disk) waits until the server comes back, because the host's kernel still
acknowledges the bytes, so TCP keepalives and ``tcp_user_timeout`` never fire. ``statement_timeout``
is enforced by the server, which is the part that is frozen.

psycopg2 lets a *wait callback* do every blocking wait of every connection. The one installed here
waits with ``select()`` up to the connection's ``wait_timeout`` (seconds, per wait on the socket);
when that passes it shuts the socket down, so libpq fails the call with "server closed the connection
unexpectedly", which SQLAlchemy takes for a disconnect: the connection is dropped from the pool and
the next checkout connects afresh. Connections without a ``wait_timeout`` (made by other code in the
process) wait as long as libpq would.

With a wait callback libpq connects asynchronously and ignores ``connect_timeout``, and a host that
hangs during the connection is a failure of the whole list rather than a reason to try the next
host. So a :class:`Connector` walks a multi-host DSN's hosts itself, each with the connection
deadline, keeping the first that accepts writes (``target_session_attrs=read-write``, checked by
libpq per host). It remembers what the last attempts taught, per engine:

- a host that did not answer within the deadline (frozen, or gone without a reset) is tried after the
  others for ``SUSPECT_SECONDS``: a frozen former leader costs nothing once another host took over;
- when no host accepted, new connections fail at once for ``retry_after`` seconds, then the next one
  tries again: while the database is down a request answers 503 at once instead of holding a server
  thread for the connect deadline (threads held that long queue every other request behind them).
"""

from __future__ import annotations

import functools
import os
import select
import socket
import threading
import time
from typing import Any

import psycopg2
import psycopg2.extensions as ext

_WAIT_FOR = {ext.POLL_READ: (True, False), ext.POLL_WRITE: (False, True)}
# How long a host that did not answer in time is tried after the others (seconds).
SUSPECT_SECONDS = 30.0
# An attempt that lasted this share of the connect deadline timed out (the host did not answer).
_TIMED_OUT_SHARE = 0.8


def wait_with_deadline(conn: Any) -> None:
    """psycopg2 wait callback: poll ``conn`` until done, cutting the socket after ``conn.wait_timeout``."""
    timeout = getattr(conn, "wait_timeout", None)
    deadline = None if not timeout else time.monotonic() + timeout
    while True:
        state = conn.poll()
        if state == ext.POLL_OK:
            return
        if state not in _WAIT_FOR:
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            _cut(conn.fileno())
            deadline, left = None, None  # the next poll() reports the broken connection
        readable, writable = _WAIT_FOR[state]
        fd = conn.fileno()
        select.select([fd] if readable else [], [fd] if writable else [], [], left)


def _cut(fd: int) -> None:
    """Shut the connection's socket down without closing libpq's descriptor."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


def install() -> None:
    """Make :func:`wait_with_deadline` psycopg2's wait callback (process-wide, idempotent)."""
    if ext.get_wait_callback() is not wait_with_deadline:
        ext.set_wait_callback(wait_with_deadline)


@functools.cache
def connection_class(connect_timeout: float) -> type:
    """A psycopg2 connection class whose waits are bounded by ``connect_timeout`` while it connects."""
    return type("BoundedConnection", (ext.connection,), {"wait_timeout": connect_timeout})


class Connector:
    """New connections to one database URL (libpq keywords; ``host``/``port`` may be comma lists), each
    host within ``connect_timeout``; a connection's later waits are bounded by ``query_timeout`` (0:
    unbounded). Thread-safe; one per engine."""

    def __init__(self, connect_timeout: float, query_timeout: float, retry_after: float = 0.0) -> None:
        self.connect_timeout = connect_timeout
        self.query_timeout = query_timeout
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._suspect_until: dict[tuple[str, str], float] = {}
        self._down_until = 0.0
        self._down_reason = ""

    def __call__(self, params: dict[str, Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            if now < self._down_until:
                raise psycopg2.OperationalError(
                    f"{self._down_reason} (next attempt in {self._down_until - now:.1f} s)"
                )
            suspect = {pair for pair, until in self._suspect_until.items() if until > now}
        # Hosts that answered lately first, in the URL's order; the suspects after them.
        pairs = sorted(_host_port_pairs(params), key=lambda pair: pair in suspect)
        factory = connection_class(self.connect_timeout)
        errors = []
        for host, port in pairs:
            one = {**params, "host": host, **({"port": port} if port else {})}
            started = time.monotonic()
            try:
                conn = psycopg2.connect(connection_factory=factory, **one)
            except psycopg2.OperationalError as exc:
                errors.append(f"{host or 'local socket'}:{port or 5432}: {str(exc).strip().splitlines()[0]}")
                if time.monotonic() - started >= self.connect_timeout * _TIMED_OUT_SHARE:
                    with self._lock:
                        self._suspect_until[(host, port)] = time.monotonic() + SUSPECT_SECONDS
                continue
            conn.wait_timeout = self.query_timeout or None
            with self._lock:
                self._suspect_until.pop((host, port), None)
                self._down_until = 0.0
            return conn
        reason = "no database host accepted the connection: " + "; ".join(errors)
        if self.retry_after > 0:
            with self._lock:
                self._down_until = time.monotonic() + self.retry_after
                self._down_reason = reason
        raise psycopg2.OperationalError(reason)


def _host_port_pairs(params: dict[str, Any]) -> list[tuple[str, str]]:
    hosts = str(params.get("host") or "").split(",")
    ports = str(params.get("port") or "").split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    if len(ports) != len(hosts):
        raise psycopg2.OperationalError(f"{len(hosts)} hosts but {len(ports)} ports in the database URL")
    return list(zip(hosts, ports, strict=True))
