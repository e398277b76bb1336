"""Generated requests on the hot paths: no answer is a 5xx, and a rejected request leaves nothing behind.

Bodies mix well-formed fields with every JSON type, integers past the columns' ranges, long strings, NUL
characters, lone surrogates and nesting; payment webhooks are signed so that they reach the field checks.
The explicit list of inputs that once answered 500 is in test_bad_input.py.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_bad_input import signed, state

EXAMPLES = settings(
    max_examples=int(os.environ.get("GRIMBOTS_FUZZ_EXAMPLES", "60")),
    derandomize=bool(os.environ.get("CI")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SPECIAL = st.sampled_from(["\x00", "\ud800", "\udfff", "\u00e9", "\U0001f600", "'", '"', "\\", "%", "\n"])
CHARS = st.one_of(st.characters(), SPECIAL)
STRINGS = st.one_of(st.text(CHARS, max_size=24), st.integers(30, 12_000).map(lambda n: "x" * n))
INTS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64]),
)
SCALARS = st.one_of(st.none(), st.booleans(), INTS, st.floats(allow_nan=False), STRINGS)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(STRINGS, inner, max_size=3)),
    max_leaves=6,
)
# Header values travel as latin-1; line breaks would not be a header at all.
HEADER = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n\x00"), max_size=80)


def segment(text: str) -> str:
    """``text`` as one URL path segment, its bytes percent-encoded (lone surrogates included)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def field(good):
    """Mostly a well-formed value, so that the other fields' checks are reached too."""
    return st.one_of(st.just(good), VALUES)


def body(**fields) -> st.SearchStrategy[bytes]:
    shaped = st.fixed_dictionaries({}, optional={name: field(good) for name, good in fields.items()})
    as_json = st.one_of(shaped, VALUES).map(lambda value: json.dumps(value, ensure_ascii=True).encode())
    return st.one_of(as_json, as_json, st.binary(max_size=64))


def check(client, services, send) -> None:
    before = state(services)
    response = send()
    assert response.status_code < 500, (response.status_code, response.get_data()[:300])
    if 400 <= response.status_code < 500:
        assert response.get_json()["error"]
        assert state(services) == before, "a rejected request changed the state"


@EXAMPLES
@given(
    raw=body(bot_id=1, telegram_user_id=5, amount_cents=100, gateway="stubpay", idempotency_key="k"),
    key=st.one_of(st.none(), HEADER),
)
def test_create_pix(client, services, raw, key):
    headers = {"Content-Type": "application/json"} | ({"Idempotency-Key": key} if key is not None else {})
    check(client, services, lambda: client.post("/api/pix", data=raw, headers=headers))


@EXAMPLES
@given(raw=body(event_id="e1", payment_id="p1", status="paid"), forged=st.one_of(st.none(), HEADER))
def test_payment_webhook(client, services, raw, forged):
    headers = signed(raw) if forged is None else {"X-Signature": forged}
    check(client, services, lambda: client.post("/webhook/payment/stubpay", data=raw, headers=headers))


@EXAMPLES
@given(
    raw=body(update_id=7, message={"message_id": 1, "chat": {"id": 5}, "text": "/start"}),
    bot=st.one_of(st.just("1"), st.integers(-5, 2**70).map(str), STRINGS.map(segment)),
)
def test_telegram_webhook(client, services, raw, bot):
    check(client, services, lambda: client.post(f"/webhook/telegram/{bot}", data=raw))


@EXAMPLES
@given(slug=st.one_of(st.just("bot1"), STRINGS), fbclid=st.one_of(st.none(), STRINGS))
def test_ad_click(client, services, slug, fbclid):
    query = {} if fbclid is None else {"fbclid": fbclid.encode("utf-8", "surrogatepass")}
    check(
        client,
        services,
        lambda: client.get("/go/" + segment(slug), query_string=query),
    )
