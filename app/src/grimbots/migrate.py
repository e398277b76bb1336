"""Schema migrations (Alembic, shipped inside the package) and the SQLite -> PostgreSQL data copy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, Table, func, select, text

from .storage import TABLES_IN_ORDER, insert_ignoring_conflict

BATCH_SIZE = 1000


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("grimbots") / "migrations"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest)."""
    with engine.begin() as conn:
        config = _alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, "alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@dataclass
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    source_digest: str
    target_digest: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_digest == self.target_digest


def copy_sqlite_to_postgres(source: Engine, target: Engine) -> list[TableCheck]:
    """Copy every table in batches (ON CONFLICT DO NOTHING, so a rerun is safe), then verify.

    Verification compares row counts and a digest of every row's primary key and content, so a row
    that exists on the target with different content is reported, not silently kept.
    """
    upgrade(target)
    for table in TABLES_IN_ORDER:
        order = list(table.primary_key.columns)
        with source.connect() as src:
            result = src.execution_options(stream_results=True).execute(select(table).order_by(*order))
            while batch := result.fetchmany(BATCH_SIZE):
                with target.begin() as dst:
                    for row in batch:
                        insert_ignoring_conflict(dst, table, dict(row._mapping))
    _reset_sequences(target)
    return [_check(source, target, table) for table in TABLES_IN_ORDER]


def _check(source: Engine, target: Engine, table: Table) -> TableCheck:
    src_rows, src_digest = _count(source, table)
    dst_rows, dst_digest = _count(target, table)
    return TableCheck(table.name, src_rows, dst_rows, src_digest, dst_digest)


def _count(engine: Engine, table: Table) -> tuple[int, str]:
    digest = hashlib.sha256()
    order = list(table.primary_key.columns)
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(table)).scalar_one()
        for row in conn.execute(select(table).order_by(*order)):
            digest.update(repr(tuple(_normalise(v) for v in row)).encode())
    return rows, digest.hexdigest()


def _normalise(value: object) -> object:
    # SQLite hands back naive UTC datetimes, PostgreSQL aware ones: compare instants.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _reset_sequences(target: Engine) -> None:
    """Rows were copied with explicit ids: move each serial sequence past the highest one."""
    with target.begin() as conn:
        for table in TABLES_IN_ORDER:
            pk = list(table.primary_key.columns)
            if len(pk) != 1 or not pk[0].autoincrement or pk[0].type.python_type is not int:
                continue
            seq = conn.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": pk[0].name}
            ).scalar()
            if seq:
                highest = f"COALESCE((SELECT MAX({pk[0].name}) FROM {table.name}), 0)"
                conn.execute(text(f"SELECT setval(:seq, {highest} + 1, false)"), {"seq": seq})
