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
host. So :func:`connect` walks a multi-host DSN's hosts itself, in order, each with the connection
deadline, keeping the first that accepts writes (``target_session_attrs=read-write``, checked by
libpq per host): a frozen former leader costs ``connect_timeout`` per new connection, not a hang.
"""

from __future__ import annotations

import functools
import os
import select
import socket
import time
from typing import Any

import psycopg2
import psycopg2.extensions as ext

_WAIT_FOR = {ext.POLL_READ: (True, False), ext.POLL_WRITE: (False, True)}


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


def connect(params: dict[str, Any], connect_timeout: float, query_timeout: float) -> Any:
    """Connect to the first host of ``params`` (libpq keywords; ``host``/``port`` may be comma lists)
    that answers within ``connect_timeout`` and suits ``target_session_attrs``; its later waits are
    bounded by ``query_timeout`` (0: unbounded)."""
    hosts = str(params.get("host") or "").split(",")
    ports = str(params.get("port") or "").split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    if len(ports) != len(hosts):
        raise psycopg2.OperationalError(f"{len(hosts)} hosts but {len(ports)} ports in the database URL")
    factory = connection_class(connect_timeout)
    errors = []
    for host, port in zip(hosts, ports, strict=True):
        one = {**params, "host": host, **({"port": port} if port else {})}
        try:
            conn = psycopg2.connect(connection_factory=factory, **one)
        except psycopg2.OperationalError as exc:
            errors.append(f"{host or 'local socket'}:{port or 5432}: {str(exc).strip().splitlines()[0]}")
            continue
        conn.wait_timeout = query_timeout or None
        return conn
    raise psycopg2.OperationalError("no database host accepted the connection: " + "; ".join(errors))
