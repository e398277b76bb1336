"""The same input delivered 50 times at once has its effect exactly once; a lost queue entry is recovered."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from grimbots import audit, funnel, payments, reconcile
from grimbots.services import build
from grimbots.storage import payments as payments_table
from grimbots.storage import pixel_events, sent_messages, webhook_inbox

from .conftest import GATEWAY_SECRET, drain, telegram_headers
from .servers import HOST, free_port
from .test_hot_paths import count, start_update

pytestmark = pytest.mark.concurrency
TIMES = 50


@pytest.fixture
def live_url(services) -> Iterator[str]:
    """The app on a threaded loopback HTTP server, so 50 requests really overlap."""
    from grimbots.web import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(HOST, free_port(), create_app(services=services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{HOST}:{server.port}"
    server.shutdown()


def post_all_at_once(url: str, raw: bytes, headers: dict[str, str], times: int = TIMES) -> Counter:
    """POST the same body ``times`` times, released together by a barrier; count the answers."""
    barrier = threading.Barrier(times)

    def one(_: int) -> str:
        request = urllib.request.Request(url, data=raw, headers=headers, method="POST")
        barrier.wait()
        with urllib.request.urlopen(request, timeout=30) as response:
            return f"{response.status} {json.loads(response.read())['status']}"

    with ThreadPoolExecutor(max_workers=times) as pool:
        return Counter(pool.map(one, range(times)))


def test_same_telegram_update_50_times_sends_one_message_set(live_url, services, stub, run_workers):
    raw = json.dumps(start_update(4242, 9001)).encode()
    headers = {"Content-Type": "application/json", **telegram_headers(2)}
    answers = post_all_at_once(f"{live_url}/webhook/telegram/2", raw, headers)
    assert answers == {"200 queued": 1, "200 duplicate": TIMES - 1}

    # Below the update lock: the same update queued 50 times (Telegram redelivering after the lock
    # expired), worked by 3 worker processes at once.
    for _ in range(TIMES - 1):
        services.enqueue("tasks", "grimbots.tasks.handle_telegram_update", 2, start_update(4242, 9001))
    run_workers("tasks", count=3)

    with services.engine.connect() as conn:
        keys = conn.execute(select(sent_messages.c.message_key, sent_messages.c.status)).all()
    assert sorted(keys) == [("start:offer", "sent"), ("start:welcome", "sent")]
    assert count(services, pixel_events, pixel_events.c.event_id == "viewcontent_2_9001") == 1
    assert stub.state.stats()["calls"] == {"telegram": 2, "capi": 1}


def test_locks_fail_open_and_unique_rows_still_hold(settings, services, stub):
    """Cache Redis down: every lock fails open, 50 threads run the funnel, the constraints decide."""
    import dataclasses

    broken = build(dataclasses.replace(settings, redis_cache_url=f"redis://{HOST}:{free_port()}/0",
                                       redis_cache_cluster_nodes=()))  # fmt: skip
    bot = broken.bot(bot_id=3)
    barrier = threading.Barrier(TIMES)

    def one(_: int) -> str:
        barrier.wait()
        return funnel.start_funnel(broken, bot, 777, "")

    with ThreadPoolExecutor(max_workers=TIMES) as pool:
        results = Counter(pool.map(one, range(TIMES)))
    broken.close()
    assert results == {"funnel_sent": TIMES}
    assert count(services, sent_messages) == 2
    assert count(services, pixel_events) == 1
    assert stub.state.stats()["calls"] == {"telegram": 2, "capi": 1}


def _paid_webhook(payment_id: str, event_id: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps({"event_id": event_id, "payment_id": payment_id, "status": "paid"}).encode()
    return raw, {"Content-Type": "application/json", "X-Signature": payments.sign(GATEWAY_SECRET, raw)}


def test_same_payment_webhook_50_times_pays_once(live_url, services, stub, run_workers):
    payment_id, _ = payments.create(services, 1, 31337, 4990, "stubpay", "key-31337")
    raw, headers = _paid_webhook(payment_id, "gw-evt-1")
    answers = post_all_at_once(f"{live_url}/webhook/payment/stubpay", raw, headers)
    assert answers == {"200 queued": 1, "200 duplicate": TIMES - 1}
    assert count(services, webhook_inbox) == 1

    # Below the inbox: the gateway notifies the same payment under 50 different event ids.
    for n in range(2, TIMES + 1):
        raw, _ = _paid_webhook(payment_id, f"gw-evt-{n}")
        payments.accept_webhook(services, "stubpay", json.loads(raw), raw)
    run_workers("webhook", count=3)

    with services.engine.connect() as conn:
        results = Counter(conn.execute(select(webhook_inbox.c.result)).scalars())
        purchase = conn.execute(select(pixel_events)).one()
        payment = conn.execute(select(payments_table)).one()
    assert results == {"paid": 1, "already_paid": TIMES - 1}
    assert payment.status == "paid"
    assert purchase.event_id == f"purchase_{payment_id}" and purchase.event_name == "Purchase"
    assert count(services, sent_messages, sent_messages.c.message_key == f"delivery:{payment_id}") == 1
    assert stub.state.stats()["calls"]["telegram"] == 1
    assert stub.state.stats()["calls"]["capi"] == 1
    report = audit.run(services.engine)
    assert report.duplicates == 0 and report.paid_transitions == 1 and report.purchase_events == 1


def test_lost_queue_entry_is_recovered_by_the_reconciler(client, services, stub):
    payment_id, _ = payments.create(services, 1, 4242, 990, "stubpay", "key-4242")
    drain(services, "gateway")
    raw, headers = _paid_webhook(payment_id, "lost-1")
    assert client.post("/webhook/payment/stubpay", data=raw, headers=headers).get_json() == {
        "status": "queued"
    }

    services.queue("webhook").empty()  # the entry is lost (a Redis primary died before replicating)
    drain(services, "webhook")
    assert audit.run(services.engine, stale_seconds=0).stale_unprocessed_webhooks == 1

    assert reconcile.reconcile(services, stale_seconds=0).webhooks_requeued == 1
    drain(services, "webhook")
    with services.engine.connect() as conn:
        assert conn.execute(select(payments_table.c.status)).scalar_one() == "paid"
    report = audit.run(services.engine, stale_seconds=0)
    assert report.unprocessed_webhooks == 0 and report.duplicates == 0
    # A second pass finds nothing to do.
    assert reconcile.reconcile(services, stale_seconds=0).webhooks_requeued == 0


def test_redelivery_of_an_unqueued_row_queues_it_again(client, services, stub):
    """A server that died between the inbox commit and the enqueue: HAProxy retries the request on
    another server, which finds the row already stored. The row must be queued again at once, not
    left for the reconciler's stale window; once processed, a redelivery queues nothing."""
    payment_id, _ = payments.create(services, 1, 5151, 1990, "stubpay", "key-5151")
    drain(services, "gateway")
    raw, headers = _paid_webhook(payment_id, "died-before-enqueue")

    def deliver() -> str:
        return client.post("/webhook/payment/stubpay", data=raw, headers=headers).get_json()["status"]

    assert deliver() == "queued"
    services.queue("webhook").empty()  # the first server's enqueue never happened

    assert deliver() == "duplicate"
    assert services.queue("webhook").count == 1
    drain(services, "webhook")
    with services.engine.connect() as conn:
        assert conn.execute(select(payments_table.c.status)).scalar_one() == "paid"
    report = audit.run(services.engine, stale_seconds=0)
    assert report.unprocessed_webhooks == 0 and report.duplicates == 0

    assert deliver() == "duplicate"
    assert services.queue("webhook").count == 0
    assert count(services, webhook_inbox) == 1


def test_two_runs_of_one_inbox_row_record_the_winner(services, stub, monkeypatch):
    """A redelivery queued the row a second time: the second run finishes (``already_paid``) while the
    first, which won the ``pending -> paid`` move, is still delivering. The row must say "paid", or the
    audit would count one paid transition too few."""
    payment_id, _ = payments.create(services, 1, 6262, 1990, "stubpay", "key-6262")
    drain(services, "gateway")
    raw, _ = _paid_webhook(payment_id, "two-runs")
    payments.accept_webhook(services, "stubpay", json.loads(raw), raw)
    inbox_id = services.queue("webhook").jobs[0].args[0]
    real_apply = payments._apply
    outcomes = []

    def apply_then_a_second_run(services_, payment_id_):
        result = real_apply(services_, payment_id_)
        if not outcomes:  # the winner, before it records: the second run goes start to end
            outcomes.append(result)
            outcomes.append(payments.process_inbox_event(services_, inbox_id))
        return result

    monkeypatch.setattr(payments, "_apply", apply_then_a_second_run)
    assert payments.process_inbox_event(services, inbox_id) == "paid"
    assert outcomes == ["paid", "already_paid"]
    with services.engine.connect() as conn:
        row = conn.execute(select(webhook_inbox)).one()
    assert row.result == "paid" and row.processed_at is not None
    report = audit.run(services.engine, stale_seconds=0)
    assert report.paid_transitions == 1 and report.duplicates == 0 and report.purchase_events == 1
