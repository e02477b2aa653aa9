"""The webhook path in batches (issue 13): a body is one INSERT and one message; a claimed batch of
talks is one transaction with one multi-row INSERT of requests; one bad talk never costs the others;
concurrent batches never lose or double a request. On SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from core.inbox import talk_processing
from core.models import ChatRequest, WebhookEvent
from sandbox.webhook_format import encode_talk_body
from tests.helpers.apps import drain
from tests.helpers.pipeline_helpers import connected_integration, events_of, requests_of

pytestmark = pytest.mark.e2e

ACCOUNT = {"id": 1, "subdomain": "sub", "_links": {"self": "https://sub.amocrm.ru"}}


@contextmanager
def statements_into(app, table: str):
    """The INSERT statements into `table` the app's engines (web and worker) run meanwhile."""
    from web.extensions import db

    services = app.extensions["chatsource.services"]
    with app.app_context():
        web_engine = db.engine
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(f"INSERT INTO {table.upper()} "):
            seen.append(statement)

    engines = {services.session_factory.kw["bind"], web_engine}
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", listen)


def close_chats(amo, setup, count, contact_base=7_000):
    talk_ids = []
    for n in range(count):
        chat = amo.state.create_chat(contact={"name": f"Клиент {n}", "phones": [f"+7915{contact_base + n:07d}"]},
                                     lead={}, origin="telegram")
        amo.state.close_talk(chat["talk_id"], force_close=True, control=True)
        talk_ids.append(chat["talk_id"])
    return talk_ids


def recorded(services, integration_id):
    with services.session_factory() as session:
        return sorted(session.scalars(sa.select(ChatRequest.talk_id).where(ChatRequest.integration_id == integration_id)))


def test_a_claimed_batch_is_recorded_by_one_insert(app, client, api, amo):
    services = app.extensions["chatsource.services"]
    setup = connected_integration(client, api, amo)
    talk_ids = close_chats(amo, setup, 6)  # six webhooks, six messages waiting in the broker
    with statements_into(app, "requests") as inserts:
        drain(app)
    assert recorded(services, setup.integration_id) == sorted(talk_ids)
    assert len(inserts) == 1  # the first message's worker took all six in one batch
    assert {e["status"] for e in events_of(client, api)} == {"done"}
    requests = requests_of(client, api)
    assert {r["attribution"] for r in requests} == {"messenger"} and len(requests) == 6


@contextmanager
def statements_reading(app, table: str):
    """The SELECT statements FROM `table` the worker's engine runs meanwhile."""
    services = app.extensions["chatsource.services"]
    engine = services.session_factory.kw["bind"]
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {table.upper()}" in statement.upper():
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)


def test_a_batch_asks_once_for_messenger_clicks_and_reads_back_no_request(app, client, api, amo):
    """Issue 13's profile: per talk, a query for the clicks of its messenger (22 % of the worker's
    CPU where there are none) and, per batch, re-reading the requests just inserted for their keys."""
    services = app.extensions["chatsource.services"]
    setup = connected_integration(client, api, amo)
    talk_ids = close_chats(amo, setup, 6)
    with statements_reading(app, "messenger_clicks") as click_reads, statements_reading(app, "requests") as request_reads:
        drain(app)
    assert recorded(services, setup.integration_id) == sorted(talk_ids)
    assert len(click_reads) == 1  # one batch: one look at the clicks, none per talk
    # The repeat flags still read each contact's series once; the rows just inserted are not read back.
    assert not any("requests.phone" in s.lower() for s in request_reads), request_reads


def test_one_bad_talk_does_not_hold_back_its_batch(app, client, api, amo, monkeypatch):
    services = app.extensions["chatsource.services"]
    setup = connected_integration(client, api, amo)
    talk_ids = close_chats(amo, setup, 4)
    bad = talk_ids[2]
    real = talk_processing.request_values

    def failing(session, integration, event, *args, **kwargs):
        if event.talk_id == bad:
            raise ValueError("this talk cannot be recorded")
        return real(session, integration, event, *args, **kwargs)

    monkeypatch.setattr(talk_processing, "request_values", failing)
    drain(app)
    assert recorded(services, setup.integration_id) == sorted(t for t in talk_ids if t != bad)
    with services.session_factory() as session:
        statuses = dict(session.execute(sa.select(WebhookEvent.talk_id, WebhookEvent.status)).all())
        error = session.scalar(sa.select(WebhookEvent.error).where(WebhookEvent.talk_id == bad))
    assert statuses == {t: ("failed" if t == bad else "done") for t in talk_ids}
    assert "this talk cannot be recorded" in error


def test_concurrent_batches_of_the_same_talks_record_each_once(app, client, api, amo):
    """Two workers holding the same events (a claim given back by the sweeper while its first worker
    was still on it): every talk has one request, and both batches end done."""
    services = app.extensions["chatsource.services"]
    setup = connected_integration(client, api, amo)
    talk_ids = close_chats(amo, setup, 8)
    with services.session_factory() as session:
        ids = list(session.scalars(sa.select(WebhookEvent.id).order_by(WebhookEvent.id)))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(talk_processing.process_claimed(services, setup.integration_id, ids))
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert recorded(services, setup.integration_id) == sorted(talk_ids)  # once each, none lost
    with services.session_factory() as session:
        statuses = set(session.scalars(sa.select(WebhookEvent.status)))
        linked = session.execute(sa.select(sa.func.count()).select_from(WebhookEvent)
                                 .where(WebhookEvent.request_id.is_not(None))).scalar()
    assert statuses == {"done"} and linked == len(talk_ids)


def test_a_body_of_many_talks_is_one_insert_and_one_message(app, client, api, amo):
    services = app.extensions["chatsource.services"]
    setup = connected_integration(client, api, amo)
    path = "/" + setup.webhook_url.split("://", 1)[1].split("/", 1)[1]
    items = [dict(talk_id=500 + n, created_at=1726581000, updated_at=1726581548, rate=0, contact_id=5, chat_id="c",
                  entity_id=6, entity_type="lead", is_in_work=(n == 3), is_read=True, origin="telegram") for n in range(4)]
    broker = app.extensions["chatsource.broker"]
    before = broker.queues["talks"].qsize()
    with statements_into(app, "webhook_events") as inserts:
        response = client.post(path, data=encode_talk_body("update", items + items[:1], ACCOUNT),
                               content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.get_json() == {"stored": 4, "duplicates": 1, "queued": 3}
    assert len(inserts) == 1
    assert broker.queues["talks"].qsize() - before == 1  # the worker taking it drains all three
    drain(app)
    assert recorded(services, setup.integration_id) == [500, 501, 502]
