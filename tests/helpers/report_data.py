"""Building report data straight in the database: a catalogue, integrations in any state, requests
and inbox events. The pipeline tests make requests the real way (sandbox + webhooks); these tests
need many, at chosen times, with chosen attributions."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from core.integrations import settings as integrations
from core.models import ChatRequest, Site, WebhookEvent
from core.platform.db import utcnow
from core.tracking import catalog


@dataclass
class Catalog:
    site_id: int
    other_site_id: int
    campaign_id: int
    other_campaign_id: int
    source_id: int
    integration_id: int


def seed_catalog(session, services, account_id: int, *, base_url: str = "https://shop.amocrm.ru") -> Catalog:
    site = _site(session, account_id, "Магазин", "shop.example.ru")
    other_site = _site(session, account_id, "Блог", "blog.example.ru")
    campaign = catalog.create_campaign(session, account_id, "Яндекс Директ", site.id)
    other_campaign = catalog.create_campaign(session, account_id, "Google Ads", site.id)
    source = catalog.create_source(session, account_id, "Telegram-канал")
    integration = integrations.create_integration(session, services, account_id, {"name": "Основной amoCRM"})
    connect(integration, services, base_url)
    session.flush()
    return Catalog(site.id, other_site.id, campaign.id, other_campaign.id, source.id, integration.id)


def _site(session, account_id: int, name: str, domain: str):
    """The account's site of `domain`: a second seed in one account shares it (one site per domain)."""
    existing = session.scalar(sa.select(Site).where(Site.account_id == account_id, Site.domain == domain))
    return existing or catalog.create_site(session, account_id, name, domain)


def connect(integration, services, base_url: str = "https://shop.amocrm.ru", *, refreshed_days_ago: float = 1,
            now: datetime | None = None) -> None:
    """Make the integration look connected (tokens stored, webhook registered) without amoCRM."""
    now = now or utcnow()
    integration.amocrm_url = base_url
    integration.token_url = f"{base_url}/oauth2/access_token"
    integration.api_base_url = base_url
    integration.access_token_enc = services.secrets.encrypt("access-token")
    integration.refresh_token_enc = services.secrets.encrypt("refresh-token")
    integration.token_expires_at = now + timedelta(hours=20)
    integration.token_refreshed_at = now - timedelta(days=refreshed_days_ago)
    integration.connected_at = now - timedelta(days=refreshed_days_ago)
    integration.status = "connected"
    integration.webhook_registered_at = now - timedelta(days=refreshed_days_ago)
    integration.is_active = True


_talk = iter(range(10_000_000, 10**12))


def request_values(account_id: int, integration_id: int, created_at: datetime, **values) -> dict:
    talk_id = values.pop("talk_id", None) or next(_talk)
    row = dict(
        account_id=account_id, integration_id=integration_id, talk_id=talk_id, chat_id=f"chat-{talk_id}",
        origin="telegram", channel="telegram", contact_name=None, phone=None, email=None, created_at=created_at,
        closed_at=created_at + timedelta(minutes=5), attribution="default",
        amo_lead_id=talk_id + 1, amo_contact_id=talk_id + 2, recorded_at=created_at + timedelta(minutes=5),
    )
    # A reason given as words is stored as words are from before codes: the `legacy` message.
    reason = values.pop("attribution_reason", "нет сессии")
    row.update(attribution_reason_code="legacy", attribution_reason_params={"text": reason})
    row.update(values)
    return row


def add_request(session, account_id: int, integration_id: int, created_at: datetime, **values) -> ChatRequest:
    row = ChatRequest(**request_values(account_id, integration_id, created_at, **values))
    session.add(row)
    session.flush()
    return row


def add_requests_bulk(session, rows: list[dict]) -> None:
    """Core executemany: what a bulk loader does (the search column is filled by its default)."""
    session.execute(sa.insert(ChatRequest), rows)


def add_event(session, account_id: int, integration_id: int, *, status: str = "failed", closed: bool = True,
              received_at: datetime | None = None, talk_id: int | None = None, **values) -> WebhookEvent:
    talk_id = talk_id or next(_talk)
    item = {"talk_id": str(talk_id), "contact_id": str(talk_id + 2), "entity_id": str(talk_id + 1), "entity_type": "lead",
            "is_in_work": "0" if closed else "1", "origin": "telegram", "created_at": "1764000000", "updated_at": "1764000300"}
    event = WebhookEvent(account_id=account_id, integration_id=integration_id, dedupe_key=f"k{talk_id}-{status}",
                         action="update", talk_id=talk_id, item=item, status=status,
                         received_at=received_at or utcnow(), attempts=8 if status == "failed" else 0,
                         error="AmoTransient: boom" if status == "failed" else None, **values)
    session.add(event)
    session.flush()
    return event


MSK = timezone(timedelta(hours=3))
