"""A realistic month of a furniture shop's chats, for the dashboard's browser test and its README
screenshot: two sites, six ad campaigns, five sources, two amoCRM integrations (one of them with its
webhook switched off by amoCRM), seven channels with a weekly rhythm, and a few failed events.

Deterministic (a seeded random), built straight in the database like tests/helpers/report_data.py."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from core.integrations import settings as integrations
from core.platform.db import utcnow
from core.tracking import catalog
from tests.helpers.report_data import add_event, add_requests_bulk, connect, request_values

MOSCOW = ZoneInfo("Europe/Moscow")
CHANNELS = (("site_chat", "com.amocrm.amocrmwa", 34), ("whatsapp", "waba", 24), ("telegram", "telegram", 19),
            ("vk", "com.vk.newchat", 9), ("avito", "avito", 7), ("instagram", "instagram", 5), ("viber", "viber", 2))
FIRST = ("Анна", "Иван", "Ольга", "Сергей", "Мария", "Дмитрий", "Елена", "Алексей", "Наталья", "Павел", "Юлия", "Артём")
LAST = ("Смирнов", "Иванов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Новиков", "Морозов", "Волков", "Зайцев")


@dataclass
class Demo:
    integration_ids: list[int]
    campaign_ids: dict[str, int]
    source_ids: dict[str, int]
    site_ids: dict[str, int]
    total: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    by_attribution: dict[str, int] = field(default_factory=dict)


def _surname(last: str, first: str) -> str:
    return last + "а" if first in ("Анна", "Ольга", "Мария", "Елена", "Наталья", "Юлия") else last


def seed_demo(session, services, account_id: int, *, today: date | None = None, days: int = 75, seed: int = 7) -> Demo:
    rnd = random.Random(seed)
    today = today or datetime.now(MOSCOW).date()
    now = utcnow()
    sites = {
        "divan": catalog.create_site(session, account_id, "Магазин диванов", "divan.example.ru"),
        "blog": catalog.create_site(session, account_id, "Блог о мебели", "blog.divan.example.ru"),
    }
    campaigns = {name: catalog.create_campaign(session, account_id, name, sites[site].id) for name, site in (
        ("Яндекс Директ — поиск", "divan"), ("Яндекс Директ — РСЯ", "divan"), ("Google Ads", "divan"),
        ("ВКонтакте — таргет", "divan"), ("Telegram Ads", "divan"), ("SEO — статьи", "blog"))}
    sources = {name: catalog.create_source(session, account_id, name) for name in (
        "Яндекс", "Google", "ВКонтакте", "Telegram-канал", "Прямые заходы")}
    main = integrations.create_integration(session, services, account_id, {"name": "Основной amoCRM"})
    spb = integrations.create_integration(session, services, account_id, {"name": "Филиал в Санкт-Петербурге"})
    connect(main, services, "https://divan.amocrm.ru", refreshed_days_ago=0.3, now=now)
    connect(spb, services, "https://divan-spb.amocrm.ru", refreshed_days_ago=2, now=now)
    main.amo_account_name, main.amo_subdomain = "Диваны — Москва", "divan"
    spb.amo_account_name, spb.amo_subdomain = "Диваны — Санкт-Петербург", "divan-spb"
    main.last_event_at = spb.last_event_at = now - timedelta(minutes=7)
    main.webhook_checked_at = spb.webhook_checked_at = now - timedelta(minutes=12)
    spb.webhook_disabled = True  # amoCRM switched it off after failed deliveries: the alarm on the dashboard
    session.flush()

    session_campaigns = [  # (campaign, source, utm_source, utm_medium, weight)
        ("Яндекс Директ — поиск", "Яндекс", "yandex", "cpc", 30), ("Яндекс Директ — РСЯ", "Яндекс", "yandex", "cpm", 14),
        ("Google Ads", "Google", "google", "cpc", 16), ("ВКонтакте — таргет", "ВКонтакте", "vk", "cpc", 10),
        ("Telegram Ads", "Telegram-канал", "telegram", "cpc", 7), ("SEO — статьи", "Google", "google", "organic", 13),
    ]
    messenger_campaign = {"telegram": "Telegram Ads", "vk": "ВКонтакте — таргет"}
    demo = Demo([main.id, spb.id], {k: v.id for k, v in campaigns.items()}, {k: v.id for k, v in sources.items()},
                {k: v.id for k, v in sites.items()})
    rows = []
    for offset in range(days, -1, -1):
        day = today - timedelta(days=offset)
        weekday = day.weekday()
        volume = 22 + (days - offset) * 0.2 + (9 if weekday in (0, 1, 2) else 0) - (8 if weekday >= 5 else 0)
        volume = max(int(rnd.gauss(volume, 3.5)), 4)
        if offset == 0:  # today is not over yet
            volume = max(volume * min(datetime.now(MOSCOW).hour, 22) // 24, 2)
        for _ in range(volume):
            channel, origin, _w = rnd.choices(CHANNELS, weights=[c[2] for c in CHANNELS])[0]
            if offset == 0:  # today: up to now (the last request a few minutes ago)
                latest = max(datetime.now(MOSCOW).hour * 60 + datetime.now(MOSCOW).minute - 4, 1)
                minute = rnd.randint(max(latest - 10 * 60, 0), latest)
            else:
                minute = rnd.randint(9 * 60, 22 * 60 + 30)
            local = datetime.combine(day, time(minute // 60, minute % 60, rnd.randint(0, 59)), tzinfo=MOSCOW)
            created = local.astimezone(timezone.utc)
            if created > now - timedelta(minutes=3):
                continue
            integration = main if rnd.random() < 0.72 else spb
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            values = dict(channel=channel, origin=origin, contact_name=f"{first} {_surname(last, first)}",
                          phone=f"+79{rnd.randint(10, 99)}{rnd.randint(1000000, 9999999)}" if rnd.random() < 0.85 else None,
                          email=f"{rnd.choice(('anna', 'ivan', 'olga', 'sergey', 'maria', 'dm'))}{rnd.randint(1, 999)}@mail.ru"
                          if rnd.random() < 0.35 else None)
            roll = rnd.random()
            session_share = 0.62 if integration is main else 0.55
            if roll < session_share:
                name, source, utm_source, utm_medium, _w = rnd.choices(session_campaigns, weights=[c[4] for c in session_campaigns])[0]
                site = "blog" if name == "SEO — статьи" else "divan"
                values.update(attribution="session", attribution_reason="сессия из поля «Сессия UIS»",
                              campaign_id=campaigns[name].id, source_id=sources[source].id, site_id=sites[site].id,
                              utm_source=utm_source, utm_medium=utm_medium,
                              utm_campaign=f"{utm_source}_{'divany' if rnd.random() < .6 else 'kresla'}_{utm_medium}",
                              utm_term="купить диван" if utm_medium == "cpc" and rnd.random() < .5 else None,
                              referrer={"yandex": "https://yandex.ru/", "google": "https://www.google.com/",
                                        "vk": "https://vk.com/", "telegram": "https://t.me/"}[utm_source],
                              entrance_page=f"https://{sites[site].domain}/catalog/{rnd.choice(('divany', 'kresla', 'krovati'))}/"
                                            f"?utm_source={utm_source}&utm_medium={utm_medium}")
            elif roll < session_share + 0.26 and channel in ("telegram", "vk", "whatsapp", "avito", "instagram", "viber"):
                name = messenger_campaign.get(channel)
                values.update(attribution="messenger", attribution_reason=f"таблица мессенджеров: {origin}",
                              campaign_id=campaigns[name].id if name else None,
                              source_id=sources["Telegram-канал" if channel == "telegram" else "Прямые заходы"].id,
                              site_id=sites["divan"].id)
            else:
                values.update(attribution="default", attribution_reason="нет сессии; РК по умолчанию",
                              campaign_id=None, source_id=sources["Прямые заходы"].id, site_id=sites["divan"].id)
            rows.append(request_values(account_id, integration.id, created, **values))
            demo.by_channel[channel] = demo.by_channel.get(channel, 0) + 1
            demo.by_attribution[values["attribution"]] = demo.by_attribution.get(values["attribution"], 0) + 1
    add_requests_bulk(session, rows)
    demo.total = len(rows)
    for n in range(3):  # amoCRM answered 500 three times in a row for these: failed, waiting for a replay
        add_event(session, account_id, spb.id, status="failed", received_at=now - timedelta(hours=5 + n))
    spb.last_error = "amoCRM ответил 500 на GET /api/v4/leads (3 попытки)"
    spb.last_error_at = now - timedelta(hours=5)
    session.flush()
    return demo
