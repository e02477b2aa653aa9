"""The tracking endpoint's decisions (core.tracking.collect): which session a page view continues, when a new
one starts, what is stored about the visitor, and which pages may send hits."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.integrations.site_script import render_site_script, site_script
from core.models import Account, Campaign, Site, Source, VisitorSession
from core.platform.db import Base, create_engine, session_factory
from core.tracking.collect import (
    IDLE_TIMEOUT,
    Hit,
    TrackingInputError,
    collect,
    find_site,
    origin_allowed,
    parse_hit,
    tracking_snippet,
)

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
LANDING = "https://shop.example.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=autumn"
SALT = "salt-for-tests"


@pytest.fixture
def db(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'tracking.db'}")
    Base.metadata.create_all(engine)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


@pytest.fixture
def site(db):
    account = Account(name="Shop")
    db.add(account)
    db.flush()
    site = Site(account_id=account.id, name="Shop", domain="shop.example.ru", site_key="a" * 24)
    db.add(site)
    db.flush()
    db.add_all([
        Campaign(account_id=account.id, site_id=site.id, name="Яндекс Директ", priority=1,
                 conditions=[[{"param": "utm_source", "op": "eq", "value": "yandex"}]]),
        Source(account_id=account.id, name="Платный трафик", priority=1,
               conditions=[[{"param": "channel", "op": "eq", "value": "paid"}]]),
    ])
    db.commit()
    return site


def hit(db, site, url=LANDING, at=T0, ua=CHROME, **fields):
    result = collect(db, site, Hit(url=url, **fields), user_agent=ua, ip="203.0.113.7", ip_salt=SALT, now=at)
    db.commit()
    return result


def row(db, session_id) -> VisitorSession:
    db.expire_all()
    return db.get(VisitorSession, session_id)


def test_landing_starts_an_attributed_session_for_a_new_visitor(db, site):
    first = hit(db, site, referrer="https://yandex.ru/", title="Диваны — Магазин")
    assert first.tracked and first.new_session and first.session_id
    assert len(first.visitor_id) >= 16  # minted for the script to keep
    vs = row(db, first.session_id)
    assert (vs.utm_source, vs.utm_medium, vs.utm_campaign, vs.channel) == ("yandex", "cpc", "autumn", "paid")
    assert db.get(Campaign, vs.campaign_id).name == "Яндекс Директ"
    assert db.get(Source, vs.source_id).name == "Платный трафик"
    assert (vs.visitor_id, vs.entrance_title, vs.page_views, vs.started_at) == (first.visitor_id, "Диваны — Магазин", 1, T0)


def test_navigation_within_the_idle_limit_continues_the_session(db, site):
    first = hit(db, site)
    later = T0 + IDLE_TIMEOUT - timedelta(seconds=1)
    second = hit(db, site, url="https://shop.example.ru/catalog", at=later, referrer=LANDING,
                 visitor_id=first.visitor_id, session_id=first.session_id)
    assert (second.session_id, second.new_session, second.visitor_id) == (first.session_id, False, first.visitor_id)
    vs = row(db, first.session_id)
    assert (vs.page_views, vs.last_activity_at, vs.entrance_page) == (2, later, LANDING)
    # Re-opening the landing page (same tags) is the same visit too.
    third = hit(db, site, at=later + timedelta(minutes=5), visitor_id=first.visitor_id, session_id=first.session_id)
    assert third.session_id == first.session_id and row(db, first.session_id).page_views == 3


def test_after_30_idle_minutes_a_page_view_starts_a_new_session(db, site):
    first = hit(db, site)
    second = hit(db, site, url="https://shop.example.ru/catalog", at=T0 + IDLE_TIMEOUT + timedelta(seconds=1),
                 visitor_id=first.visitor_id, session_id=first.session_id, referrer="https://shop.example.ru/")
    assert second.new_session and second.session_id != first.session_id
    assert second.visitor_id == first.visitor_id
    assert row(db, second.session_id).channel == "internal"  # classified by its own entrance


def test_activity_keeps_the_session_alive_past_30_minutes_from_its_start(db, site):
    first = hit(db, site)
    ids = dict(visitor_id=first.visitor_id, session_id=first.session_id)
    hit(db, site, url="https://shop.example.ru/a", at=T0 + timedelta(minutes=25), **ids)
    third = hit(db, site, url="https://shop.example.ru/b", at=T0 + timedelta(minutes=50), **ids)
    assert third.session_id == first.session_id


@pytest.mark.parametrize("url", [
    "https://shop.example.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=winter",  # another campaign
    "https://shop.example.ru/?utm_source=google&utm_medium=cpc",
    "https://shop.example.ru/sofa?gclid=Cj0KCQ",  # a new ad click
    "https://shop.example.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=autumn&yclid=7731",  # a new click of the same campaign
])
def test_a_new_campaign_starts_a_new_session_at_once(db, site, url):
    first = hit(db, site)
    second = hit(db, site, url=url, at=T0 + timedelta(minutes=1), visitor_id=first.visitor_id, session_id=first.session_id)
    assert second.new_session and second.session_id != first.session_id
    assert row(db, second.session_id).entrance_page == url


def test_a_direct_session_is_replaced_by_an_arriving_campaign(db, site):
    first = hit(db, site, url="https://shop.example.ru/")
    second = hit(db, site, at=T0 + timedelta(minutes=2), visitor_id=first.visitor_id, session_id=first.session_id)
    assert second.new_session
    assert row(db, second.session_id).campaign_id is not None and row(db, first.session_id).campaign_id is None


def test_a_lost_session_id_is_found_by_the_visitor(db, site):
    first = hit(db, site)
    # The script offers no session (e.g. another tab kept it); the visitor's live session is continued.
    second = hit(db, site, url="https://shop.example.ru/cart", at=T0 + timedelta(minutes=3), visitor_id=first.visitor_id)
    assert second.session_id == first.session_id and not second.new_session


def test_another_visitors_or_sites_session_is_never_continued(db, site):
    first = hit(db, site)
    stranger = hit(db, site, url="https://shop.example.ru/x", at=T0 + timedelta(minutes=1),
                   visitor_id="someone-else-123", session_id=first.session_id)
    assert stranger.new_session and stranger.session_id != first.session_id
    other_site = Site(account_id=site.account_id, name="Blog", domain="blog.example.ru", site_key="b" * 24)
    db.add(other_site)
    db.commit()
    elsewhere = hit(db, other_site, url="https://blog.example.ru/", at=T0 + timedelta(minutes=1),
                    visitor_id=first.visitor_id, session_id=first.session_id)
    assert elsewhere.new_session and row(db, elsewhere.session_id).site_id == other_site.id


def test_a_ping_extends_a_live_session_and_never_starts_one(db, site):
    first = hit(db, site)
    ids = dict(visitor_id=first.visitor_id, session_id=first.session_id)
    ping = hit(db, site, url="https://shop.example.ru/", at=T0 + timedelta(minutes=20), event="ping", **ids)
    vs = row(db, first.session_id)
    assert ping.session_id == first.session_id and vs.page_views == 1
    assert vs.last_activity_at == T0 + timedelta(minutes=20)
    late = hit(db, site, url="https://shop.example.ru/", at=T0 + timedelta(hours=2), event="ping", **ids)
    assert late.session_id is None and db.scalar(sa.select(sa.func.count()).select_from(VisitorSession)) == 1


def test_bots_are_not_tracked(db, site):
    for ua in ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
               "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36"):
        result = hit(db, site, ua=ua)
        assert (result.tracked, result.session_id) == (False, None)
    assert db.scalar(sa.select(sa.func.count()).select_from(VisitorSession)) == 0


def test_the_ip_is_kept_only_as_a_keyed_hash(db, site):
    vs = row(db, hit(db, site).session_id)
    stored = " ".join(str(v) for v in db.execute(sa.select(VisitorSession.__table__)).one())
    assert "203.0.113.7" not in stored
    assert vs.ip_hash and len(vs.ip_hash) == 64


def test_a_mangled_visitor_id_is_replaced_not_rejected():
    assert parse_hit({"url": LANDING, "visitor_id": "<script>"}).visitor_id is None
    assert parse_hit({"url": LANDING, "visitor_id": "Ab3_-x.9Yz"}).visitor_id == "Ab3_-x.9Yz"
    assert parse_hit({"url": LANDING, "session_id": "42"}).session_id == 42


@pytest.mark.parametrize("data, field", [
    ({}, "url"),
    ({"url": ""}, "url"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "/relative/path"}, "url"),
    ({"url": LANDING, "title": 5}, "title"),
    ({"url": LANDING, "referrer": ["x"]}, "referrer"),
    ({"url": LANDING, "session_id": "abc"}, "session_id"),
    ({"url": LANDING, "session_id": True}, "session_id"),
    ({"url": LANDING, "event": "click"}, "event"),
])
def test_malformed_hits_name_the_field(data, field):
    with pytest.raises(TrackingInputError) as err:
        parse_hit(data)
    assert err.value.field == field


def test_long_values_are_cut_to_the_columns():
    parsed = parse_hit({"url": LANDING + "&x=" + "a" * 10000, "title": "T" * 1000})
    assert len(parsed.url) == 4096 and len(parsed.title) == 300


@pytest.mark.parametrize("origin, allowed", [
    ("https://shop.example.ru", True),
    ("http://shop.example.ru:8080", True),
    ("https://www.shop.example.ru", True),
    ("https://m.shop.example.ru/some/page?x=1", True),  # a Referer works as well
    ("https://evilshop.example.ru", False),
    ("https://shop.example.ru.evil.com", False),
    ("https://example.ru", False),
    ("ftp://shop.example.ru", False),
    ("null", False),
    (None, False),
])
def test_only_the_sites_domain_and_subdomains_may_send_hits(origin, allowed):
    assert origin_allowed("shop.example.ru", origin) is allowed


def test_cyrillic_domains_match_their_punycode():
    assert origin_allowed("xn--80arbjktj.xn--p1ai", "https://www.xn--80arbjktj.xn--p1ai")
    assert origin_allowed("мойсайт.рф", "https://xn--80arbjktj.xn--p1ai")


def test_find_site_by_key(db, site):
    assert find_site(db, "a" * 24).id == site.id
    assert find_site(db, "unknown") is None
    assert find_site(db, "'; drop table sites; --") is None
    assert find_site(db, None) is None


def test_the_snippet_loads_the_sites_script_async_and_queues_onready(site):
    snippet = tracking_snippet("https://cs.example.com/", site)
    assert '"https://cs.example.com/t/' + "a" * 24 + '.js"' in snippet
    assert "s.async = true" in snippet and "_q" in snippet and "onReady" in snippet
    assert snippet.startswith("<!--") and snippet.rstrip().endswith("</script>")


def test_site_script_for_a_lead_or_a_contact_field():
    class Integration:
        session_field_id = 812345
        session_field_entity = "leads"
        name = "Сайт --> amoCRM"

    script = site_script(None, Integration)
    assert "FIELD_ID = 812345" in script and 'ENTITY = "lead"' in script
    assert '["amo_social_button", "crm_plugin"]' in script and "setMeta(meta(id))" in script
    assert "«Сайт amoCRM»" in script and script.count("-->") == 1  # the name cannot close the comment
    Integration.session_field_entity = "contacts"
    assert 'ENTITY = "contact"' in site_script(None, Integration)
    Integration.session_field_id = None
    assert site_script(None, Integration) is None
    with pytest.raises(ValueError):
        render_site_script(0)


def test_two_tabs_each_continue_the_session_they_name(db, site):
    """The one-statement continue (core.tracking.collect.continue_session) prefers the named live session,
    else the visitor's latest live one, and never an idle one."""
    first = hit(db, site)
    # The same visitor arrives again from another campaign in a second tab: a second live session.
    second = hit(db, site, url="https://shop.example.ru/?utm_source=google&utm_medium=cpc", at=T0 + timedelta(minutes=1),
                 visitor_id=first.visitor_id, session_id=first.session_id)
    assert second.new_session
    older = hit(db, site, url="https://shop.example.ru/a", at=T0 + timedelta(minutes=2), visitor_id=first.visitor_id,
                session_id=first.session_id)
    assert older.session_id == first.session_id and row(db, first.session_id).page_views == 2
    unnamed = hit(db, site, url="https://shop.example.ru/b", at=T0 + timedelta(minutes=3), visitor_id=first.visitor_id)
    assert unnamed.session_id == first.session_id  # the latest activity: the first tab's session was just touched
    later = hit(db, site, url="https://shop.example.ru/c", at=T0 + timedelta(minutes=33), visitor_id=first.visitor_id,
                session_id=second.session_id)  # second idle since minute 1, first since minute 3
    assert later.session_id == first.session_id and row(db, second.session_id).page_views == 1
    ping = hit(db, site, url="https://shop.example.ru/c", at=T0 + timedelta(minutes=34), visitor_id=first.visitor_id,
               session_id=first.session_id, event="ping")
    assert ping.session_id == first.session_id and row(db, first.session_id).page_views == 4
    assert row(db, first.session_id).last_activity_at == T0 + timedelta(minutes=34)
