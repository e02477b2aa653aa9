"""Fuzzing `POST /webhooks/amocrm/<token>` with hypothesis: arbitrary bytes, form keys and values
(amoCRM-shaped or not), content types and tokens. Whatever comes in, the answer is never a 5xx,
a rejected body stores nothing, and an accepted one stores at most one event per talk item."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from core.inbox.webhooks import TALK_FIELDS
from core.integrations import settings as integrations
from core.models import WebhookEvent
from sandbox.webhook_format import encode_talk_body

pytestmark = [pytest.mark.timeout(120)]

FORM = "application/x-www-form-urlencoded"
ACCOUNT = {"id": 1, "subdomain": "sub", "_links": {"self": "https://sub.amocrm.ru"}}
VALID = encode_talk_body("update", [dict(talk_id=191, created_at=1726581000, updated_at=1726581548, rate=0, contact_id=5,
                                         chat_id="c", entity_id=6, entity_type="lead", is_in_work=False, is_read=True,
                                         origin="telegram")], ACCOUNT)

numbers = st.one_of(st.integers(-10, 10**6).map(str), st.integers(-(2**70), 2**70).map(str),
                    st.sampled_from(["", "0", "-0", "007", "1e3", "²", "١٢٣", " 5", "5 ", "9" * 40]))
texts = st.text(max_size=40)  # includes NUL, surrogate-free unicode, brackets, & and =
values = st.one_of(numbers, texts, st.sampled_from(["0", "1", "true", "false", "lead", "contact", "telegram"]))
parts = st.one_of(st.sampled_from(["talk", "account", "leads", "add", "update", "delete", "0", "1", "499", "500", ""]),
                  st.sampled_from(TALK_FIELDS), texts)


@st.composite
def amo_keys(draw) -> str:
    """Keys shaped like amoCRM's (`talk[update][0][talk_id]`), often slightly wrong."""
    root = draw(st.sampled_from(["talk", "talk", "talk", "account", "leads", "x"]) | texts)
    path = draw(st.lists(parts, min_size=0, max_size=5))
    key = root + "".join(f"[{p}]" for p in path)
    if draw(st.booleans()) and draw(st.booleans()):
        key += draw(st.sampled_from(["[", "]", "[]", "][", "[[0]]"]))
    return key


pairs = st.lists(st.tuples(amo_keys() | texts, values), max_size=30)
talk_items = st.lists(st.fixed_dictionaries({"talk_id": numbers}, optional={f: values for f in TALK_FIELDS if f != "talk_id"}), max_size=6)
bodies = st.one_of(
    st.binary(max_size=600),
    pairs.map(lambda p: urlencode(p).encode()),
    st.tuples(st.sampled_from(["add", "update", "delete", "restore"]), talk_items).map(
        lambda a: urlencode([(f"talk[{a[0]}][{i}][{k}]", v) for i, item in enumerate(a[1]) for k, v in item.items()]
                            + [("account[id]", "1"), ("account[subdomain]", "sub")]).encode()),
    st.tuples(st.just(VALID), st.binary(max_size=20), st.integers(0, len(VALID))).map(
        lambda a: VALID.encode()[: a[2]] + a[1] + VALID.encode()[a[2]:]),
)
content_types = st.one_of(
    st.sampled_from([FORM, f"{FORM}; charset=utf-8", "", "text/plain", "application/json", "multipart/form-data; boundary=x",
                     "APPLICATION/X-WWW-FORM-URLENCODED", "application/x-www-form-urlencoded; charset=koi8-r"]),
    st.text(max_size=30).filter(lambda t: "\n" not in t and "\r" not in t),
)


def events_count(services) -> int:
    with services.session_factory() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent))


@pytest.fixture
def webhook_path(services, account_id):
    with services.session_factory() as session:
        integration = integrations.create_integration(session, services, account_id, {"name": "amo"})
        integration.is_active = True
        integration.status = "connected"
        session.commit()
        url = integrations.webhook_url(services, integration)
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def check(client, services, path: str, body: bytes, content_type: str) -> None:
    before = events_count(services)
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(path, data=body, headers=headers)
    after = events_count(services)
    event(f"status {response.status_code}")  # --hypothesis-show-statistics shows the mix
    assert response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert after == before, "a rejected body stored something"
        assert response.get_json()["error"]["message"], "every rejection says why"
    else:
        answer = response.get_json()
        assert after - before == answer["stored"] <= body.count(b"talk_id")


@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies, content_type=content_types)
@example(body=VALID.encode(), content_type=FORM)
@example(body=VALID.replace("talk_id%5D=191", "talk_id%5D=" + "9" * 25).encode(), content_type=FORM)  # over 64 bits
@example(body=VALID.replace("origin%5D=telegram", "origin%5D=tele%00gram").encode(), content_type=FORM)  # NUL
@example(body=VALID.replace("updated_at%5D=1726581548", "updated_at%5D=" + "9" * 30).encode(), content_type=FORM)
@example(body=VALID.replace("talk_id%5D=191", "talk_id%5D=%C2%B2").encode(), content_type=FORM)  # "²" is a digit to Python
@example(body=b"\xff\xfe", content_type=FORM)
def test_webhook_endpoint_never_answers_5xx(client, services, webhook_path, body, content_type):
    check(client, services, webhook_path, body, content_type)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(token=st.text(max_size=300), body=st.sampled_from([VALID.encode(), b"", b"talk=1"]))
def test_unknown_or_odd_tokens_are_4xx(client, services, webhook_path, token, body):
    from urllib.parse import quote

    path = "/webhooks/amocrm/" + quote(token, safe="")
    before = events_count(services)
    response = client.post(path, data=body, content_type=FORM)
    assert response.status_code < 500
    if path != webhook_path:
        assert response.status_code in (404, 405, 308) and events_count(services) == before
