"""Issue 10 §3: `POST /t/collect` is public (the site key is in every page), so hits per client IP,
new sessions per IP and hits per site are limited: over a limit → 429 with Retry-After, a JSON error
and nothing stored. On Redis (fakeredis and the real server) and in-process (embedded mode)."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from core.models import VisitorSession
from core.platform.ratelimit import LocalQuotas, Quota, QuotaExceeded, RedisQuotas
from tests.helpers.apps import dispose, make_app
from tests.helpers.environment import REDIS_URL, redis_params, unavailable

ORIGIN = "https://www.shop.example.ru"
PAGE = "https://www.shop.example.ru/catalog"


@pytest.fixture(params=["embedded"] + redis_params())
def redis_mode(request):
    if request.param == "embedded":
        yield None
        return
    if request.param == "fakeredis":
        import fakeredis

        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    else:
        import redis

        client = redis.Redis.from_url(REDIS_URL or "redis://127.0.0.1:6379/15")
        try:
            client.ping()
        except Exception as exc:  # pragma: no cover
            unavailable("Redis", exc)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def limited(db_url, tmp_path, redis_mode):
    app = make_app(db_url, tmp_path, redis_client=redis_mode, tracking_hits_per_ip_per_minute=5,
                   tracking_new_sessions_per_ip_per_minute=2, tracking_hits_per_site_per_second=1000)
    yield app
    dispose(app)


def make_site(app, domain="shop.example.ru"):
    from core.access.accounts import ensure_first_account
    from core.tracking.catalog import create_site

    with app.extensions["chatsource.services"].session_factory() as session:
        site = create_site(session, ensure_first_account(session).id, "Магазин", domain)
        session.commit()
        return site.site_key


def hit(client, site_key, ip, **body):
    return client.post("/t/collect", data=json.dumps({"site_key": site_key, "url": PAGE, **body}),
                       content_type="text/plain;charset=UTF-8", environ_base={"REMOTE_ADDR": ip},
                       headers={"Origin": ORIGIN, "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"})


def stored(app) -> tuple[int, int]:
    """(sessions, page views) in the database."""
    with app.extensions["chatsource.services"].session_factory() as session:
        return session.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(VisitorSession.page_views), 0))
                               .select_from(VisitorSession)).one()


def refused(response):
    assert response.status_code == 429, response.get_json()
    assert 1 <= int(response.headers["Retry-After"]) <= 120  # a full minute decays over the next one
    error = response.get_json()["error"]
    assert error["code"] == "rate_limited" and error["retry_after"] == int(response.headers["Retry-After"])
    return error


def test_hits_per_client_ip_are_limited_and_nothing_is_stored_over_it(limited):
    client, key = limited.test_client(), make_site(limited)
    first = hit(client, key, "203.0.113.7").get_json()
    for _ in range(4):  # one visitor browsing: the same session
        assert hit(client, key, "203.0.113.7", visitor_id=first["visitor_id"], session_id=first["session_id"]).status_code == 200
    assert stored(limited) == (1, 5)
    assert "hits_per_ip" in refused(hit(client, key, "203.0.113.7", visitor_id=first["visitor_id"],
                                        session_id=first["session_id"]))["message"]
    assert stored(limited) == (1, 5)
    assert hit(client, key, "198.51.100.9").status_code == 200  # another visitor is not held back
    assert stored(limited) == (2, 6)


def test_new_sessions_per_ip_are_capped_but_a_visitor_keeps_browsing(limited):
    client, key = limited.test_client(), make_site(limited)
    sessions = [hit(client, key, "2001:db8:1:2::10").get_json() for _ in range(2)]
    assert all(s["new_session"] for s in sessions)
    assert "new_sessions_per_ip" in refused(hit(client, key, "2001:db8:1:2::99"))["message"]  # the same /64
    assert stored(limited) == (2, 2)
    visitor = sessions[0]
    assert hit(client, key, "2001:db8:1:2::10", visitor_id=visitor["visitor_id"], session_id=visitor["session_id"]).status_code == 200
    assert stored(limited) == (2, 3)


def test_the_site_ceiling_holds_whatever_the_ip(db_url, tmp_path):
    app = make_app(db_url, tmp_path, tracking_hits_per_site_per_second=3)
    try:
        now = [1000.0]
        app.extensions["chatsource.services"].quotas = LocalQuotas(clock=lambda: now[0])  # one frozen second
        client, key, other = app.test_client(), make_site(app), make_site(app, "other.example.ru")
        for i in range(3):
            assert hit(client, key, f"192.0.2.{i + 1}").status_code == 200
        assert "hits_per_site" in refused(hit(client, key, "192.0.2.50"))["message"]
        assert stored(app)[0] == 3
        assert client.post("/t/collect", data=json.dumps({"site_key": other, "url": "https://other.example.ru/"}),
                           content_type="text/plain", environ_base={"REMOTE_ADDR": "192.0.2.50"},
                           headers={"Origin": "https://other.example.ru", "User-Agent": "Mozilla/5.0 Chrome/126.0"}).status_code == 200
        now[0] += 2.0  # two seconds later the site is admitted again
        assert hit(client, key, "192.0.2.50").status_code == 200
    finally:
        dispose(app)


def test_the_defaults_fit_a_big_site(db_url, tmp_path):
    settings = make_app.__globals__["settings_for"](db_url, tmp_path)
    assert (settings.tracking_hits_per_ip_per_minute, settings.tracking_new_sessions_per_ip_per_minute,
            settings.tracking_hits_per_site_per_second, settings.login_attempts_per_ip) == (120, 20, 3000, 30)


@pytest.mark.parametrize("kind", ["local"] + redis_params())
def test_a_quota_counts_only_what_it_admits_and_says_when_to_come_back(kind, any_redis):
    if kind == "local":
        now = [5000.0]
        quotas = LocalQuotas(clock=lambda: now[0])
    else:
        quotas = RedisQuotas(any_redis)
    minute = Quota("test", f"q-{kind}", 3, 60)
    for _ in range(3):
        quotas.admit(minute)
    for _ in range(5):  # refused requests are not counted
        with pytest.raises(QuotaExceeded) as info:
            quotas.admit(minute)
        assert info.value.name == "test" and 1 <= info.value.retry_after <= 120
    other = Quota("other", f"q2-{kind}", 1, 60)
    with pytest.raises(QuotaExceeded):
        quotas.admit(other, minute)  # all or nothing: `other` was not spent by the refusal
    quotas.admit(other)
    if kind == "local":
        now[0] += 120  # two windows later the count has gone
        quotas.admit(minute)
