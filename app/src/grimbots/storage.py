"""Storage: the tables (SQLAlchemy Core), the engine, and the few statements the dedup layers rely on.

SQLite (phase 1) and PostgreSQL (phase 2 on) sit behind one ``database_url``. The unique constraints
here are the layers that still hold when a Redis lock fails open.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from . import pg_timeouts
from .settings import Settings

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

bots = Table(
    "bots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("username", String(64), nullable=False, unique=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("token", String(128), nullable=False),
    Column("pixel_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per message the bot sent. ``message_key`` names the message deterministically
# (``start:welcome``, ``reply:<incoming id>``, ``delivery:<payment id>``) so a second send is a conflict.
sent_messages = Table(
    "sent_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("bot_id", Integer, ForeignKey("bots.id"), nullable=False),
    Column("telegram_user_id", BigInteger, nullable=False),
    Column("message_key", String(128), nullable=False),
    Column("direction", String(8), nullable=False, default="out"),
    Column("text", Text, nullable=False),
    Column("status", String(16), nullable=False),  # sending, sent
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("bot_id", "telegram_user_id", "message_key", "direction"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("bot_id", Integer, ForeignKey("bots.id"), nullable=False),
    Column("telegram_user_id", BigInteger, nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("gateway", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # pending, paid
    Column("charge_ref", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("paid_at", DateTime(timezone=True)),
    Column("effects_done_at", DateTime(timezone=True)),
)

# Durable inbox: a payment webhook is stored here before the gateway gets its 2xx.
webhook_inbox = Table(
    "webhook_inbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("gateway", String(32), nullable=False),
    Column("dedup_key", String(128), nullable=False),
    Column("payment_id", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("processed_at", DateTime(timezone=True)),
    Column("result", String(32)),
    Column("attempts", Integer, nullable=False, default=0),
    UniqueConstraint("gateway", "dedup_key"),
    Index(None, "processed_at", "received_at"),
)

pixel_events = Table(
    "pixel_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(128), nullable=False, unique=True),
    Column("event_name", String(32), nullable=False),
    Column("bot_id", Integer, ForeignKey("bots.id"), nullable=False),
    Column("payment_id", String(32)),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending, sending, sent
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Index(None, "status", "created_at"),
)

# Parent tables first: the order rows are copied in by the SQLite -> PostgreSQL migration.
TABLES_IN_ORDER = (bots, payments, sent_messages, webhook_inbox, pixel_events)


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(settings: Settings, *, admin: bool = False) -> Engine:
    """One engine per process. SQLite gets WAL and a busy timeout so workers and web can share the file.

    PostgreSQL: every wait is bounded (``grimbots.pg_timeouts``): ``db_connect_timeout`` per host while
    connecting, ``db_query_timeout`` per wait on a query (also the server's ``statement_timeout``), TCP
    keepalives for a host that dies; the pool's pre-ping within ``db_connect_timeout``; a host that timed
    out is tried last for a while, and after no host accepted new connections fail at once for
    ``db_retry_after`` seconds. ``admin`` engines (schema migrations, the SQLite copy, the audit) keep
    the connection bounds but let a statement run as long as it needs.
    """
    if settings.is_sqlite:
        engine = create_engine(settings.database_url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    query_timeout = 0.0 if admin else settings.db_query_timeout
    # Timestamps are UTC everywhere, whatever the server's default time zone is.
    options = "-c timezone=UTC"
    if query_timeout:
        options += f" -c statement_timeout={int(query_timeout * 1000)}"
    keepalive = settings.db_keepalive_seconds
    connect_args = {
        "options": options,
        "keepalives": 1,
        "keepalives_idle": keepalive,
        "keepalives_interval": max(1, keepalive // 3),
        "keepalives_count": 3,
        # Sent data unacknowledged this long (a host that is gone): the connection is dead.
        "tcp_user_timeout": keepalive * 1000,
    }
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
    pg_timeouts.install()
    connector = pg_timeouts.Connector(settings.db_connect_timeout, query_timeout, settings.db_retry_after)
    _bound_pre_ping(engine, settings.db_connect_timeout)

    @event.listens_for(engine, "do_connect")
    def _bounded_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> Any:
        return connector(cparams)

    return engine


def _bound_pre_ping(engine: Engine, timeout: float) -> None:
    """The pool's pre-ping (a round trip on every checkout of a pooled connection) waits at most
    ``timeout``, not the query timeout: a ping that slow means the server is gone or frozen, and a
    request should not hold a server thread that long to find out. A failed ping makes the pool drop
    every connection it holds (SQLAlchemy) and connect afresh."""
    ping = engine.dialect.do_ping

    def bounded_ping(dbapi_connection: Any) -> bool:
        saved = getattr(dbapi_connection, "wait_timeout", None)
        dbapi_connection.wait_timeout = timeout
        try:
            return ping(dbapi_connection)
        finally:
            dbapi_connection.wait_timeout = saved

    engine.dialect.do_ping = bounded_ping  # type: ignore[method-assign]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def insert_ignoring_conflict(conn: Connection, table: Table, row: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING. True if this call created the row, False if it already existed."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(**row).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(**row).on_conflict_do_nothing()
    else:  # pragma: no cover - only the two dialects above are supported
        stmt = insert(table).values(**row)
    return conn.execute(stmt).rowcount == 1
