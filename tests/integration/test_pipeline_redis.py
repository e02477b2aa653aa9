"""The production shape: the Redis broker, the Redis rate limiter and Redis locks (fakeredis, and
the real server on CI), with chats closed in the sandbox recorded exactly once."""
from __future__ import annotations

import pytest

from tests.helpers.apps import api_headers_for, dispose, drain, make_app
from tests.helpers.pipeline_helpers import connected_integration, requests_of

pytestmark = pytest.mark.e2e


@pytest.fixture
def redis_app(db_url, tmp_path, live, any_redis):
    app = make_app(db_url, tmp_path, redis_client=any_redis, public_url=live.url)
    live.app = app
    yield app
    dispose(app)


def test_burst_on_the_redis_broker_is_recorded_once_within_the_rate_limit(redis_app, amo, any_redis):
    from dramatiq.brokers.redis import RedisBroker

    from core.access.accounts import ensure_first_account
    from core.platform.ratelimit import RedisSlidingWindowLimiter

    services = redis_app.extensions["chatsource.services"]
    assert isinstance(redis_app.extensions["chatsource.broker"], RedisBroker)
    assert isinstance(services.limiter, RedisSlidingWindowLimiter)
    with services.session_factory() as session:
        account_id = ensure_first_account(session).id
        session.commit()
    client, api = redis_app.test_client(), api_headers_for(redis_app, account_id)
    setup = connected_integration(client, api, amo)
    talks = [amo.state.create_chat(contact={"name": f"Р{i}", "phones": [f"+7903000{i:04d}"]}, origin="telegram")["talk_id"]
             for i in range(30)]
    for talk_id in talks:
        amo.state.close_talk(talk_id, force_close=True, control=True)
    amo.state.send_talk_events(event="update_talk", talk_ids=talks[:10])  # a repeated batch
    amo.state.reset_stats()
    drain(redis_app)
    rows = requests_of(client, api, limit=500)
    assert sorted(r["talk_id"] for r in rows) == sorted(talks)
    assert {r["attribution"] for r in rows} == {"messenger"} and all(r["campaign_id"] == setup.telegram_campaign_id for r in rows)
    stats = amo.state.get_stats()
    assert stats["peak_calls_per_second"] <= 7 and stats["responses_429"] == 0
    assert any_redis.keys("chatsource:lock:*") == []  # every batch lock released


def test_every_attribution_path_on_the_redis_broker(redis_app, amo):
    """Session, messenger mapping and default — the three ways a chat is attributed — through the
    production shape (Redis broker, limiter and locks), not only the in-process broker."""
    from core.access.accounts import ensure_first_account
    from tests.helpers.pipeline_helpers import post

    services = redis_app.extensions["chatsource.services"]
    with services.session_factory() as session:
        account_id = ensure_first_account(session).id
        session.commit()
    client, api = redis_app.test_client(), api_headers_for(redis_app, account_id)
    setup = connected_integration(client, api, amo)
    visit = post(client, "/api/v1/sessions", api, {"site_id": setup.site_id, "utm_source": "yandex"})
    field = str(setup.session_field_id)
    by_session = amo.state.create_chat(contact={"name": "С сессией"}, origin="waba",
                                       lead={"custom_fields": {field: str(visit["id"])}})
    by_messenger = amo.state.create_chat(contact={"name": "Из Telegram"}, origin="telegram")
    by_default = amo.state.create_chat(contact={"name": "Из Viber"}, origin="viber")
    for chat in (by_session, by_messenger, by_default):
        amo.state.close_talk(chat["talk_id"], force_close=True, control=True)
    drain(redis_app)
    rows = {r["talk_id"]: r for r in requests_of(client, api)}
    assert (rows[by_session["talk_id"]]["attribution"], rows[by_session["talk_id"]]["session_id"]) == ("session", visit["id"])
    assert rows[by_session["talk_id"]]["campaign_id"] == visit["campaign_id"] is not None
    assert (rows[by_messenger["talk_id"]]["attribution"], rows[by_messenger["talk_id"]]["campaign_id"]) == \
        ("messenger", setup.telegram_campaign_id)
    assert (rows[by_default["talk_id"]]["attribution"], rows[by_default["talk_id"]]["campaign_id"]) == \
        ("default", setup.default_campaign_id)


def _redis_client_and_api(redis_app):
    from core.access.accounts import ensure_first_account

    services = redis_app.extensions["chatsource.services"]
    with services.session_factory() as session:
        account_id = ensure_first_account(session).id
        session.commit()
    return redis_app.test_client(), api_headers_for(redis_app, account_id)


def _talk_messages(redis_app) -> int:
    broker = redis_app.extensions["chatsource.broker"]
    return broker.client.llen(f"{broker.namespace}:talks")


def test_a_burst_of_closes_sends_one_message_while_it_waits_and_loses_no_talk(redis_app, amo, any_redis):
    """core.inbox.drain_marker: while an integration's message waits, its webhooks send no other
    (the worker that takes it drains the whole backlog); once taken, the next close sends its own."""
    client, api = _redis_client_and_api(redis_app)
    connected_integration(client, api, amo)
    talks = [amo.state.create_chat(contact={"name": f"Б{i}", "phones": [f"+7904000{i:04d}"]}, origin="telegram")["talk_id"]
             for i in range(12)]
    before = _talk_messages(redis_app)
    for talk_id in talks:
        amo.state.close_talk(talk_id, force_close=True, control=True)
    assert _talk_messages(redis_app) - before == 1  # twelve webhooks, one message
    drain(redis_app)
    assert sorted(r["talk_id"] for r in requests_of(client, api, limit=500)) == sorted(talks)
    late = amo.state.create_chat(contact={"name": "Поздний", "phones": ["+79040009999"]}, origin="telegram")["talk_id"]
    amo.state.close_talk(late, force_close=True, control=True)
    assert _talk_messages(redis_app) == 1  # the marker went with the message: this close sent its own
    drain(redis_app)
    assert late in {r["talk_id"] for r in requests_of(client, api, limit=500)}
    assert any_redis.keys("chatsource:drain-pending:*") == []


def test_a_message_whose_event_is_done_still_drains_what_waited_behind_it(redis_app, amo):
    """The first close's message waits; the second close sends none. If another drain took the first
    event meanwhile, the message must still record the second, whose webhook relied on it."""
    import sqlalchemy as sa

    from core.models import WebhookEvent

    services = redis_app.extensions["chatsource.services"]
    client, api = _redis_client_and_api(redis_app)
    connected_integration(client, api, amo)
    first, second = (amo.state.create_chat(contact={"name": f"В{i}", "phones": [f"+790500000{i}"]}, origin="telegram")["talk_id"]
                     for i in range(2))
    amo.state.close_talk(first, force_close=True, control=True)
    amo.state.close_talk(second, force_close=True, control=True)
    assert _talk_messages(redis_app) == 1
    with services.session_factory() as session:  # as if an earlier drain had recorded the first talk
        session.execute(sa.update(WebhookEvent).where(WebhookEvent.talk_id == first).values(status="ignored"))
        session.commit()
    drain(redis_app)
    assert [r["talk_id"] for r in requests_of(client, api)] == [second]
