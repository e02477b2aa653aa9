"""Reading requests and inbox events for the Data API and the admin, always within one account."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.models import ChatRequest, WebhookEvent

REQUEST_COLUMNS = (
    "id", "integration_id", "talk_id", "chat_id", "origin", "channel", "contact_name", "phone", "email", "created_at",
    "closed_at", "session_id", "visitor_id", "site_id", "campaign_id", "source_id", "utm_source", "utm_medium",
    "utm_campaign", "utm_term", "utm_content", "referrer", "entrance_page", "attribution", "attribution_reason",
    "amo_lead_id", "amo_contact_id",
)
EVENT_STATUSES = ("received", "processing", "done", "skipped", "ignored", "parked", "failed")


def request_to_dict(row: ChatRequest) -> dict:
    data = {}
    for column in REQUEST_COLUMNS:
        value = getattr(row, column)
        data[column] = value.isoformat() if isinstance(value, datetime) else value
    return data


def list_requests(session: Session, account_id: int, *, date_from: datetime | None = None, date_till: datetime | None = None,
                  integration_id: int | None = None, channel: str | None = None, attribution: str | None = None,
                  limit: int = 100, offset: int = 0) -> tuple[list[ChatRequest], int]:
    query = sa.select(ChatRequest).where(ChatRequest.account_id == account_id)
    if date_from:
        query = query.where(ChatRequest.created_at >= date_from)
    if date_till:
        query = query.where(ChatRequest.created_at <= date_till)
    if integration_id:
        query = query.where(ChatRequest.integration_id == integration_id)
    if channel:
        query = query.where(ChatRequest.channel == channel)
    if attribution:
        query = query.where(ChatRequest.attribution == attribution)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = list(session.scalars(query.order_by(ChatRequest.created_at.desc(), ChatRequest.id.desc()).limit(limit).offset(offset)))
    return rows, total


def event_to_dict(row: WebhookEvent) -> dict:
    return {
        "id": row.id,
        "integration_id": row.integration_id,
        "talk_id": row.talk_id,
        "action": row.action,
        "status": row.status,
        "status_reason": row.status_reason,
        "attempts": row.attempts,
        "error": row.error,
        "received_at": row.received_at.isoformat(),
        "processed_at": row.processed_at.isoformat() if row.processed_at else None,
        "request_id": row.request_id,
    }


def list_events(session: Session, account_id: int, *, status: str | None = None, integration_id: int | None = None,
                limit: int = 100, offset: int = 0) -> tuple[list[WebhookEvent], int]:
    query = sa.select(WebhookEvent).where(WebhookEvent.account_id == account_id)
    if status:
        query = query.where(WebhookEvent.status == status)
    if integration_id:
        query = query.where(WebhookEvent.integration_id == integration_id)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = list(session.scalars(query.order_by(WebhookEvent.id.desc()).limit(limit).offset(offset)))
    return rows, total
