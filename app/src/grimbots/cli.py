"""``grimbots-app``: operator commands.

db upgrade | db current              schema migrations (shipped in the package)
seed-bots --count N                  demo bots 1..N (slug bot<N>), idempotent
reconcile [--loop SECONDS]           queue stalled webhooks, charges, pixel events, messages again
audit [--json] [--fail-on-stale]     duplicated effects; exit 1 if any
queues [--wait-empty SECONDS]        jobs waiting or running per queue; exit 1 if not empty in time
migrate-sqlite-to-postgres --source URL [--target URL]  copy, then verify row by row
telegram-webhook --base-url URL [--bot-id N]  register the bots' webhooks with their secret tokens
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

from rq.registry import StartedJobRegistry
from sqlalchemy import create_engine, select

from . import audit, migrate, reconcile, telegram_auth
from .outbound import OutboundClient, OutboundError
from .services import build
from .settings import QUEUE_NAMES, Settings, SettingsError
from .storage import bots, insert_ignoring_conflict, make_engine, utcnow


def _db(settings: Settings, args: argparse.Namespace) -> int:
    engine = make_engine(settings, admin=True)
    before = migrate.current_revision(engine)
    if args.action == "upgrade":
        migrate.upgrade(engine)
    after = migrate.current_revision(engine)
    # Deploy tooling reads "upgraded" to report a change; "schema revision" is always printed.
    note = f" (upgraded from {before or 'empty'})" if after != before else ""
    print(f"schema revision: {after}{note}")
    return 0


def _seed_bots(settings: Settings, args: argparse.Namespace) -> int:
    engine = make_engine(settings)
    created = 0
    with engine.begin() as conn:
        for n in range(1, args.count + 1):
            row = {
                "id": n,
                "username": f"grimbots_demo{n}_bot",
                "slug": f"bot{n}",
                "token": f"{n}:demo-token",
                "pixel_id": f"pixel{n}",
                "created_at": utcnow(),
            }
            created += insert_ignoring_conflict(conn, bots, row)
    print(f"bots created: {created}, already there: {args.count - created}")
    return 0


def _reconcile(settings: Settings, args: argparse.Namespace) -> int:
    services = build(settings)
    while True:
        result = reconcile.reconcile(services, args.stale_seconds)
        print(result.text(), flush=True)
        if not args.loop:
            return 0
        time.sleep(args.loop)


def _telegram_webhook(settings: Settings, args: argparse.Namespace) -> int:
    """Register each bot's webhook with Telegram, with its secret token (grimbots.telegram_auth)."""
    if not settings.telegram_webhook_secret:
        print("grimbots-app: GRIMBOTS_TELEGRAM_WEBHOOK_SECRET is not set", file=sys.stderr)
        return 2
    base = args.base_url.rstrip("/")
    if not base.startswith("https://"):
        print(
            f"grimbots-app: --base-url must be https:// (Telegram calls only HTTPS), got {base!r}",
            file=sys.stderr,
        )
        return 2
    engine = make_engine(settings)
    query = select(bots.c.id, bots.c.token).order_by(bots.c.id)
    if args.bot_id:
        query = query.where(bots.c.id.in_(args.bot_id))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    missing = set(args.bot_id or ()) - {row.id for row in rows}
    if missing:
        print(f"grimbots-app: no bot with id {', '.join(map(str, sorted(missing)))}", file=sys.stderr)
        return 1
    outbound = OutboundClient(settings)
    failed = 0
    for row in rows:
        url = f"{base}/webhook/telegram/{row.id}"
        token = telegram_auth.secret_token(settings.telegram_webhook_secret, row.id)
        try:
            answer = outbound.set_webhook(row.token, url, token)
        except OutboundError as exc:
            failed += 1
            print(f"bot {row.id}: webhook NOT registered: {exc}", file=sys.stderr, flush=True)
            continue
        done = "dry run, GRIMBOTS_OUTBOUND_URL is empty" if answer.get("dry_run") else "secret token set"
        print(f"bot {row.id}: webhook {url} ({done})", flush=True)
    engine.dispose()
    return 1 if failed else 0


def _audit(settings: Settings, args: argparse.Namespace) -> int:
    report = audit.run(make_engine(settings, admin=True), args.stale_seconds)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.text())
    if report.duplicates:
        return 1
    return 1 if args.fail_on_stale and report.stale_unprocessed_webhooks else 0


def _queues(settings: Settings, args: argparse.Namespace) -> int:
    """Jobs waiting or running per queue; with --wait-empty, poll until none are left or time runs out."""
    services = build(settings)
    deadline = time.monotonic() + args.wait_empty
    try:
        while True:
            sizes = {}
            for name in QUEUE_NAMES:
                queue = services.queue(name)
                sizes[name] = queue.count + StartedJobRegistry(queue=queue).count
            print(" ".join(f"{name}={size}" for name, size in sizes.items()), flush=True)
            if not any(sizes.values()):
                return 0
            if time.monotonic() >= deadline:
                return 1
            time.sleep(1)
    finally:
        services.close()


def _migrate_sqlite(settings: Settings, args: argparse.Namespace) -> int:
    source = create_engine(args.source)
    target = make_engine(Settings(database_url=args.target or settings.database_url), admin=True)
    checks = migrate.copy_sqlite_to_postgres(source, target)
    for check in checks:
        verdict = "ok" if check.ok else "MISMATCH"
        print(f"{check.table:15} source={check.source_rows:>8} target={check.target_rows:>8} {verdict}")
    return 0 if all(check.ok for check in checks) else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="grimbots-app", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    db = commands.add_parser("db", help="schema migrations")
    db.add_argument("action", choices=["upgrade", "current"])
    db.set_defaults(run=_db)
    seed = commands.add_parser("seed-bots", help="create demo bots 1..N")
    seed.add_argument("--count", type=int, default=30)
    seed.set_defaults(run=_seed_bots)
    rec = commands.add_parser("reconcile", help="queue stalled work again")
    rec.add_argument(
        "--stale-seconds", type=int, default=None, help="default: GRIMBOTS_RECONCILE_STALE_SECONDS"
    )
    rec.add_argument("--loop", type=float, default=0, help="repeat every N seconds (0: run once)")
    rec.set_defaults(run=_reconcile)
    aud = commands.add_parser("audit", help="count duplicated effects")
    aud.add_argument("--json", action="store_true")
    aud.add_argument("--stale-seconds", type=int, default=60)
    aud.add_argument("--fail-on-stale", action="store_true", help="exit 1 on stale unprocessed webhooks too")
    aud.set_defaults(run=_audit)
    que = commands.add_parser("queues", help="jobs waiting or running per queue")
    que.add_argument(
        "--wait-empty",
        type=float,
        default=0,
        help="wait up to N seconds for every queue to empty; exit 1 if not",
    )
    que.set_defaults(run=_queues)
    tg = commands.add_parser("telegram-webhook", help="register the bots' webhooks with their secret tokens")
    tg.add_argument("--base-url", required=True, help="the public https:// address Telegram calls")
    tg.add_argument("--bot-id", type=int, action="append", help="only this bot (repeatable; default: all)")
    tg.set_defaults(run=_telegram_webhook)
    mig = commands.add_parser("migrate-sqlite-to-postgres", help="copy the phase-1 data into PostgreSQL")
    mig.add_argument("--source", required=True, help="sqlite:////var/lib/grimbots/grimbots.db")
    mig.add_argument("--target", help="postgresql+psycopg2://... (default: GRIMBOTS_DATABASE_URL)")
    mig.set_defaults(run=_migrate_sqlite)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"grimbots-app: {exc}", file=sys.stderr)
        return 2
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    return run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
