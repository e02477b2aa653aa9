"""Sites, sources and ad campaigns in the admin: saved through the core functions (domain normalised,
site key issued, rules validated — a bad regex is a form error, never a 500), ordered by priority,
and never visible or editable from another account."""
from __future__ import annotations

import json
import re

import sqlalchemy as sa

from core.models import Campaign, Site, Source, WebhookEvent
from core.tracking import catalog
from tests.helpers.admin_helpers import csrf_from, post_form, signed_in, text


def rows(app, model):
    with app.extensions["chatsource.services"].session_factory() as session:
        return list(session.scalars(sa.select(model).order_by(model.id)))


def test_a_new_site_gets_its_key_and_shows_the_code_to_install(app):
    client = signed_in(app)
    response = post_form(client, "/admin/sites/new/", {"name": "Магазин", "domain": "https://WWW.Shop.Example.ru/catalog"})
    assert response.status_code == 302
    [site] = rows(app, Site)
    assert (site.name, site.domain) == ("Магазин", "shop.example.ru") and len(site.site_key) == 24
    assert response.headers["Location"].startswith(f"/admin/sites/details/?id={site.id}")

    details = text(client.get(response.headers["Location"]))
    assert site.site_key in details and "Основной код вставки" in details
    assert "Копировать" in details  # the snippet comes with a copy button
    listing = text(client.get("/admin/sites/"))
    assert "shop.example.ru" in listing and site.site_key in listing


def test_a_bad_domain_is_a_form_error(app):
    client = signed_in(app)
    response = post_form(client, "/admin/sites/new/", {"name": "Сайт", "domain": "not a domain!"})
    assert response.status_code == 200
    assert "не доменное имя" in text(response)
    assert rows(app, Site) == []


def test_source_rules_are_saved_and_a_bad_regex_is_a_form_error_not_a_500(app):
    client = signed_in(app)
    rules = [[{"param": "utm_source", "op": "eq", "value": " Yandex ", "exclude": False},
              {"param": "utm_medium", "op": "contains", "value": "cpc", "exclude": True}],
             [{"param": "referrer_domain", "op": "regex", "value": r"(^|\.)yandex\.(ru|com)$"}]]
    response = post_form(client, "/admin/sources/new/", {"name": "Яндекс", "priority": "5", "conditions": json.dumps(rules)})
    assert response.status_code == 302
    [source] = rows(app, Source)
    assert source.priority == 5 and source.conditions[0][0]["value"] == "Yandex" and source.conditions[0][1]["exclude"] is True

    bad = [[{"param": "utm_source", "op": "regex", "value": "yandex("}]]
    response = post_form(client, "/admin/sources/new/", {"name": "Сломанный", "priority": "1", "conditions": json.dumps(bad)})
    assert response.status_code == 200
    assert "Группа 1, условие 1: регулярное выражение с ошибкой" in text(response)

    lookahead = [[{"param": "entrance_page", "op": "regex", "value": "^(?!/admin)"}]]
    response = post_form(client, "/admin/sources/new/", {"name": "Без RE2", "priority": "1", "conditions": json.dumps(lookahead)})
    assert response.status_code == 200 and "есть негативная опережающая проверка (?!…)" in text(response)

    garbage = post_form(client, "/admin/sources/new/", {"name": "Мусор", "priority": "1", "conditions": "{not json"})
    assert garbage.status_code == 200 and "Не удалось прочитать правила" in text(garbage)
    assert [s.name for s in rows(app, Source)] == ["Яндекс"]


def test_editing_a_source_goes_through_the_same_checks(app):
    client = signed_in(app)
    post_form(client, "/admin/sources/new/", {"name": "Телеграм", "priority": "100", "conditions": "[]"})
    [source] = rows(app, Source)
    url = f"/admin/sources/edit/?id={source.id}"
    assert post_form(client, url, {"name": "Телеграм-канал", "priority": "7",
                                   "conditions": json.dumps([[{"param": "utm_source", "op": "eq", "value": "tg"}]])}).status_code == 302
    [source] = rows(app, Source)
    assert (source.name, source.priority, source.conditions[0][0]["value"]) == ("Телеграм-канал", 7, "tg")
    response = post_form(client, url, {"name": "", "priority": "-1", "conditions": "[]"})
    assert response.status_code == 200 and rows(app, Source)[0].name == "Телеграм-канал"


def test_campaigns_belong_to_a_site_of_the_account_and_list_in_priority_order(app):
    client = signed_in(app)
    with app.extensions["chatsource.services"].session_factory() as session:
        from core.access.accounts import create_account

        other_site = catalog.create_site(session, create_account(session, "Чужой").id, "Чужой", "other.example").id
        session.commit()
    post_form(client, "/admin/sites/new/", {"name": "Магазин", "domain": "shop.example.ru"})
    site = [s for s in rows(app, Site) if s.domain == "shop.example.ru"][0]

    form = text(client.get("/admin/campaigns/new/"))
    assert "Магазин (shop.example.ru)" in form and "other.example" not in form
    refused = post_form(client, "/admin/campaigns/new/", {"name": "Чужая", "site_id": str(other_site), "priority": "1", "conditions": "[]"})
    assert refused.status_code == 200 and rows(app, Campaign) == []

    for name, priority in (("Поздняя", "50"), ("Ранняя", "1")):
        assert post_form(client, "/admin/campaigns/new/", {"name": name, "site_id": str(site.id), "priority": priority,
                                                             "conditions": "[]"}).status_code == 302
    listing = text(client.get("/admin/campaigns/"))
    assert listing.index("Ранняя") < listing.index("Поздняя")


def _seed_other_account(app):
    from core.access.accounts import create_account

    services = app.extensions["chatsource.services"]
    with services.session_factory() as session:
        account = create_account(session, "Аккаунт А")
        site = catalog.create_site(session, account.id, "Сайт А", "a.example")
        source = catalog.create_source(session, account.id, "Источник А")
        campaign = catalog.create_campaign(session, account.id, "РК А", site.id)
        from core.integrations import settings as integrations

        integration = integrations.create_integration(session, services, account.id, {"name": "amoCRM А"})
        event = WebhookEvent(account_id=account.id, integration_id=integration.id, dedupe_key="x", action="update", talk_id=1,
                             item={"talk_id": "1", "is_in_work": "0", "origin": "telegram"}, status="failed", error="boom")
        session.add(event)
        session.commit()
        return {"site": site.id, "source": source.id, "campaign": campaign.id, "integration": integration.id, "event": event.id}


def test_another_accounts_rows_cannot_be_seen_or_changed_through_admin_urls(app):
    a = _seed_other_account(app)
    client = signed_in(app, email="b@example.ru", account_name="Аккаунт Б")

    for url in ("/admin/sites/", "/admin/sources/", "/admin/campaigns/", "/admin/events/", "/admin/integrations/", "/admin/"):
        page = text(client.get(url))
        assert "Сайт А" not in page and "Источник А" not in page and "РК А" not in page and "amoCRM А" not in page, url
    events = text(client.get("/admin/events/"))
    assert "boom" not in events

    for view, id_ in (("sites", a["site"]), ("sources", a["source"]), ("campaigns", a["campaign"]), ("events", a["event"])):
        for page in ("details", "edit"):
            response = client.get(f"/admin/{view}/{page}/?id={id_}", follow_redirects=True)
            assert response.status_code == 200 and "А</" not in text(response), (view, page)
    for suffix in ("", "connect", "webhook", "disconnect", "check"):
        url = f"/admin/integrations/{a['integration']}/{suffix}"
        response = client.get(url) if not suffix else client.post(url, data={"csrf_token": csrf_from(text(client.get("/admin/")))})
        assert response.status_code == 404, url

    token = csrf_from(text(client.get("/admin/sites/")))
    client.post(f"/admin/sites/edit/?id={a['site']}", data={"name": "Взломан", "domain": "hacked.example", "csrf_token": token})
    client.post("/admin/sites/delete/", data={"id": str(a["site"]), "csrf_token": token})
    client.post("/admin/sources/action/", data={"action": "delete", "rowid": [str(a["source"])], "csrf_token": token})
    client.post("/admin/events/action/", data={"action": "replay", "rowid": [str(a["event"])], "csrf_token": token})

    assert [s.name for s in rows(app, Site)] == ["Сайт А"]
    assert [s.name for s in rows(app, Source)] == ["Источник А"]
    assert rows(app, WebhookEvent)[0].status == "failed"


def test_the_condition_editor_gets_its_labels_in_the_page(app):
    client = signed_in(app)
    page = text(client.get("/admin/campaigns/new/"))
    config = re.search(r'class="cs-conditions" data-config="([^"]+)"', page)
    assert config
    import html

    data = json.loads(html.unescape(config.group(1)))
    assert ["regex", "регулярное выражение"] in data["ops"] and ["entrance_page", "Страница входа"] in data["params"]
