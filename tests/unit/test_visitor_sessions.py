"""Visitor sessions: channel, search engine, campaign and source matching, bots, privacy."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.models import Account, Campaign, Site, Source, VisitorSession
from core.platform.db import Base, create_engine, session_factory
from core.tracking.classification import classify_traffic
from core.tracking.sessions import SiteNotFound, create_session, session_params, to_dict
from core.tracking.user_agents import is_bot, parse_user_agent

SALT = "test-salt"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


def cond(param, op, value, exclude=False):
    return {"param": param, "op": op, "value": value, "exclude": exclude}


@pytest.fixture
def db(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'sessions.db'}")
    Base.metadata.create_all(engine)
    make = session_factory(engine)
    with make() as session:
        yield session
    engine.dispose()


@pytest.fixture
def world(db):
    """Account 1 with sites A and B; account 2 with its own site."""
    acc, other = Account(name="Shop"), Account(name="Other")
    db.add_all([acc, other])
    db.flush()
    site_a = Site(account_id=acc.id, name="A", domain="shop.example.ru", site_key="key-a")
    site_b = Site(account_id=acc.id, name="B", domain="blog.example.ru", site_key="key-b")
    foreign = Site(account_id=other.id, name="X", domain="x.example.com", site_key="key-x")
    db.add_all([site_a, site_b, foreign])
    db.commit()
    return {"acc": acc.id, "other": other.id, "a": site_a.id, "b": site_b.id, "foreign": foreign.id}


# --- classification --------------------------------------------------------------------------


def classify(referrer=None, utm=None, click_ids=None, entrance="https://shop.example.ru/", site="shop.example.ru"):
    return classify_traffic(entrance, referrer, site, utm or {}, click_ids or {})


def test_google_organic_with_its_query():
    info = classify("https://www.google.com/search?q=buy+red+shoes&hl=en")
    assert (info.channel, info.search_engine, info.search_query, info.referrer_domain) == (
        "organic", "google", "buy red shoes", "google.com"
    )


def test_google_organic_without_a_visible_query():
    info = classify("https://www.google.co.uk/")
    assert (info.channel, info.search_engine, info.search_query) == ("organic", "google", None)


def test_yandex_organic_reads_text():
    info = classify("https://yandex.ru/search/?text=%D0%BA%D1%83%D0%BF%D0%B8%D1%82%D1%8C+%D0%B4%D0%B8%D0%B2%D0%B0%D0%BD&lr=213")
    assert (info.channel, info.search_engine, info.search_query) == ("organic", "yandex", "купить диван")


@pytest.mark.parametrize(
    "referrer, engine",
    [("https://www.bing.com/search?q=x", "bing"), ("https://duckduckgo.com/", "duckduckgo"),
     ("https://go.mail.ru/search?q=x", "mailru"), ("https://ya.ru/", "yandex"), ("https://m.baidu.com/s?wd=x", "baidu")],
)
def test_other_search_engines(referrer, engine):
    info = classify(referrer)
    assert (info.channel, info.search_engine) == ("organic", engine)


def test_paid_by_gclid_even_from_google():
    info = classify("https://www.google.com/", click_ids={"gclid": "Cj0KCQ"})
    assert info.channel == "paid"
    assert info.click_ids == {"gclid": "Cj0KCQ"}


def test_paid_by_click_id_in_the_entrance_page():
    info = classify(None, entrance="https://shop.example.ru/?yclid=7731&utm_campaign=x")
    assert info.channel == "paid"
    assert info.click_ids == {"yclid": "7731"}


@pytest.mark.parametrize("medium", ["cpc", "CPC", "ppc", "cpm", "display", "paid_social", "retargeting"])
def test_paid_by_utm_medium(medium):
    assert classify("https://yandex.ru/", {"utm_source": "yandex", "utm_medium": medium}).channel == "paid"


def test_fbclid_alone_is_not_paid():
    # Facebook adds fbclid to organic posts' links too.
    assert classify("https://l.facebook.com/l.php", click_ids={"fbclid": "IwAR"}).channel == "social"


def test_internal_referrer_is_the_site_itself_or_its_subdomains():
    assert classify("https://shop.example.ru/catalog").channel == "internal"
    assert classify("https://www.shop.example.ru/catalog").channel == "internal"
    assert classify("https://m.shop.example.ru/").channel == "internal"
    assert classify("https://blog.example.ru/").channel == "referral"  # a sibling is another site
    # Cyrillic domains: the browser sends punycode, the admin typed Cyrillic (or the other way round).
    assert classify("https://xn--80arbjktj.xn--p1ai/page", site="мойсайт.рф").channel == "internal"
    assert classify("https://www.мойсайт.рф/page", site="https://xn--80arbjktj.xn--p1ai/").channel == "internal"


def test_direct_without_referrer_or_tags():
    for referrer in (None, "", "   ", "about:blank", "null"):
        info = classify(referrer)
        assert info.channel == "direct" and info.referrer_domain is None


@pytest.mark.parametrize(
    "referrer, utm",
    [(None, {"utm_source": "mailchimp", "utm_medium": "email"}), (None, {"utm_source": "x", "utm_medium": "newsletter"}),
     ("https://mail.google.com/mail/u/0/", {}), ("https://e.mail.ru/inbox/", {})],
)
def test_email(referrer, utm):
    assert classify(referrer, utm).channel == "email"


@pytest.mark.parametrize(
    "referrer, utm",
    [("https://vk.com/club1", {}), ("https://ok.ru/group/1", {}), ("https://t.co/abc", {}),
     ("https://www.instagram.com/", {}), ("https://dzen.ru/a/x", {}), (None, {"utm_source": "vk", "utm_medium": "post"}),
     (None, {"utm_source": "blogger", "utm_medium": "social"})],
)
def test_social(referrer, utm):
    assert classify(referrer, utm).channel == "social"


@pytest.mark.parametrize(
    "referrer, utm",
    [("https://t.me/shop_channel/15", {}), ("https://web.telegram.org/", {}), ("https://wa.me/79990000000", {}),
     ("https://vk.com/im?sel=1", {}), ("android-app://org.telegram.messenger/", {}),
     (None, {"utm_source": "telegram"}), (None, {"utm_source": "whatsapp", "utm_medium": "bot"})],
)
def test_messenger(referrer, utm):
    assert classify(referrer, utm).channel == "messenger"


def test_referral_and_unknown_utm():
    info = classify("https://forum.example.org/thread/1")
    assert (info.channel, info.referrer_domain) == ("referral", "forum.example.org")
    assert classify(None, {"utm_source": "partner_site"}).channel == "referral"
    # UTM tags take precedence over the referrer.
    assert classify("https://www.google.com/", {"utm_source": "pricelist", "utm_medium": "xml"}).channel == "referral"
    assert classify(None, {"utm_source": "google", "utm_medium": "organic"}).search_engine == "google"


@pytest.mark.parametrize(
    "junk",
    ["http://[::1", "javascript:alert(1)", "://", "http://", "https://exa mple.com/", "\x00\x01", "%%%", "http://:80/",
     "mailto:a@b.c", "x" * 10000, 12345, b"https://google.com"],
)
def test_junk_referrers_never_raise(junk):
    info = classify_traffic(junk, junk, junk, {"utm_source": junk}, {"gclid": junk, 5: "x"})
    assert info.channel in ("paid", "organic", "social", "referral", "direct", "email", "messenger", "internal")


# --- user agents -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ua",
    ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
     "Mozilla/5.0 (compatible; YandexMetrika/2.0; +http://yandex.com/bots)",
     "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0 Safari/537.36",
     "facebookexternalhit/1.1", "TelegramBot (like TwitterBot)", "Some SEO crawler", "python-requests/2.32",
     "curl/8.5.0"],
)
def test_bots(ua):
    assert is_bot(ua)


@pytest.mark.parametrize(
    "ua", [CHROME, IPHONE, None, "", "Mozilla/5.0 (Linux; Android 10; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) "
                                    "Chrome/90.0 Mobile Safari/537.36"],
)
def test_people(ua):
    assert not is_bot(ua)


def test_device_and_browser():
    assert parse_user_agent(CHROME) == ("desktop", "Chrome")
    assert parse_user_agent(IPHONE) == ("mobile", "Safari")
    assert parse_user_agent(
        "Mozilla/5.0 (iPad; CPU OS 15_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.0 Safari/604.1"
    ) == ("tablet", "Safari")
    assert parse_user_agent(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
        "YaBrowser/24.1.0 Safari/537.36"
    ) == ("desktop", "Yandex Browser")
    assert parse_user_agent(None) == (None, None)


# --- create_session -------------------------------------------------------------------------


def test_session_gets_the_campaign_of_its_own_site(db, world):
    # Site B's campaign has the same rules and goes first, but the visit is on site A.
    db.add_all([
        Campaign(account_id=world["acc"], site_id=world["b"], name="B promo", priority=1,
                 conditions=[[cond("utm_campaign", "eq", "promo")]]),
        Campaign(account_id=world["acc"], site_id=world["a"], name="A other", priority=5,
                 conditions=[[cond("utm_campaign", "eq", "other")]]),
        Campaign(account_id=world["acc"], site_id=world["a"], name="A promo", priority=10,
                 conditions=[[cond("utm_campaign", "eq", "promo")]]),
        Campaign(account_id=world["acc"], site_id=world["a"], name="A no rules", priority=0, conditions=[]),
    ])
    db.commit()
    campaign_a = db.scalar(sa.select(Campaign.id).where(Campaign.name == "A promo"))
    campaign_b = db.scalar(sa.select(Campaign.id).where(Campaign.name == "B promo"))

    vs = create_session(db, world["acc"], world["a"], utm_source="vk", utm_medium="cpc", utm_campaign="PROMO",
                        user_agent=CHROME)
    assert vs.campaign_id == campaign_a
    vs_b = create_session(db, world["acc"], world["b"], utm_campaign="promo")
    assert vs_b.campaign_id == campaign_b
    assert create_session(db, world["acc"], world["a"], utm_campaign="nothing").campaign_id is None


def test_session_gets_the_first_matching_source_of_the_account(db, world):
    db.add_all([
        Source(account_id=world["acc"], name="Google organic", priority=20,
               conditions=[[cond("channel", "eq", "organic"), cond("search_engine", "eq", "google")]]),
        Source(account_id=world["acc"], name="Any search", priority=50, conditions=[[cond("channel", "eq", "organic")]]),
        Source(account_id=world["other"], name="Foreign", priority=0, conditions=[[cond("channel", "regex", ".")]]),
    ])
    db.commit()
    ids = dict(db.execute(sa.select(Source.name, Source.id)).all())
    google = create_session(db, world["acc"], world["a"], referrer="https://www.google.ru/search?q=shoes")
    assert (google.channel, google.search_engine, google.search_query) == ("organic", "google", "shoes")
    assert google.source_id == ids["Google organic"]
    bing = create_session(db, world["acc"], world["a"], referrer="https://www.bing.com/")
    assert bing.source_id == ids["Any search"]
    direct = create_session(db, world["acc"], world["a"])
    assert (direct.channel, direct.source_id) == ("direct", None)


def test_site_must_belong_to_the_account(db, world):
    with pytest.raises(SiteNotFound):
        create_session(db, world["acc"], world["foreign"])
    with pytest.raises(SiteNotFound):
        create_session(db, world["acc"], 99999)
    assert db.scalar(sa.select(sa.func.count()).select_from(VisitorSession)) == 0


def test_bots_are_not_stored(db, world):
    assert create_session(db, world["acc"], world["a"], user_agent="Mozilla/5.0 (compatible; YandexBot/3.0)") is None
    db.commit()
    assert db.scalar(sa.select(sa.func.count()).select_from(VisitorSession)) == 0


def test_ip_is_kept_only_as_a_salted_hash(db, world):
    vs = create_session(db, world["acc"], world["a"], ip="203.0.113.7", ip_salt=SALT, user_agent=IPHONE)
    db.commit()
    row = db.execute(sa.select(VisitorSession.__table__).where(VisitorSession.id == vs.id)).mappings().one()
    assert all("203.0.113.7" not in str(value) for value in row.values())
    assert re.fullmatch(r"[0-9a-f]{64}", row["ip_hash"])
    same = create_session(db, world["acc"], world["a"], ip="203.0.113.7", ip_salt=SALT)
    other_salt = create_session(db, world["acc"], world["a"], ip="203.0.113.7", ip_salt="another")
    assert same.ip_hash == vs.ip_hash != other_salt.ip_hash
    assert create_session(db, world["acc"], world["a"], ip="203.0.113.7").ip_hash is None  # never unsalted
    assert (row["device"], row["browser"]) == ("mobile", "Safari")


def test_over_long_values_are_cut_to_the_columns(db, world):
    vs = create_session(db, world["acc"], world["a"], visitor_id="v" * 100, utm_source="s" * 600,
                        gclid="g" * 900, entrance_page="https://shop.example.ru/?" + "p" * 10000)
    db.commit()
    db.expire_all()
    vs = db.get(VisitorSession, vs.id)
    assert len(vs.visitor_id) == 64 and len(vs.utm_source) == 500 and len(vs.gclid) == 500
    assert len(vs.entrance_page) <= 4096


def test_utm_tags_are_read_from_the_entrance_page_when_not_given(db, world):
    vs = create_session(db, world["acc"], world["a"],
                        entrance_page="https://shop.example.ru/?utm_source=yandex&utm_medium=cpc&utm_campaign=sofa&yclid=42")
    assert (vs.utm_source, vs.utm_medium, vs.utm_campaign, vs.yclid, vs.channel) == ("yandex", "cpc", "sofa", "42", "paid")
    given = create_session(db, world["acc"], world["a"], utm_source="vk",
                           entrance_page="https://shop.example.ru/?utm_source=yandex&utm_medium=cpc")
    assert (given.utm_source, given.utm_medium) == ("vk", None)  # the two sets are not mixed


def test_flushes_but_does_not_commit(db, world):
    vs = create_session(db, world["acc"], world["a"])
    assert vs.id is not None
    db.rollback()
    assert db.scalar(sa.select(sa.func.count()).select_from(VisitorSession)) == 0


def test_started_at_must_be_aware(db, world):
    with pytest.raises(ValueError):
        create_session(db, world["acc"], world["a"], started_at=datetime(2026, 1, 1, 12, 0))


def test_to_dict_and_session_params(db, world):
    moscow = timezone(timedelta(hours=3))
    vs = create_session(db, world["acc"], world["a"], started_at=datetime(2026, 3, 1, 15, 30, tzinfo=moscow),
                        visitor_id="v1", entrance_page="https://shop.example.ru/sofa", referrer="https://yandex.ru/",
                        gclid="abc", click_ids={"msclkid": "m1"})
    db.commit()
    db.expire_all()
    data = to_dict(db.get(VisitorSession, vs.id))
    assert data == {
        "id": vs.id, "site_id": world["a"], "visitor_id": "v1", "started_at": "2026-03-01T12:30:00+00:00",
        "entrance_page": "https://shop.example.ru/sofa", "referrer": "https://yandex.ru/",
        "referrer_domain": "yandex.ru", "search_engine": "yandex", "search_query": None,
        "utm_source": None, "utm_medium": None, "utm_campaign": None, "utm_term": None, "utm_content": None,
        "gclid": "abc", "yclid": None, "fbclid": None, "channel": "paid", "campaign_id": None, "source_id": None,
    }
    datetime.fromisoformat(data["started_at"])
    assert db.get(VisitorSession, vs.id).click_ids == {"gclid": "abc", "msclkid": "m1"}
    params = session_params(db.get(VisitorSession, vs.id))
    assert params["channel"] == "paid" and params["gclid"] == "abc" and params["referrer_domain"] == "yandex.ru"
    assert set(params) == {
        "entrance_page", "referrer", "referrer_domain", "utm_source", "utm_medium", "utm_campaign", "utm_term",
        "utm_content", "channel", "search_engine", "gclid", "yclid",
    }
