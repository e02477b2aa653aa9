"""The webhook inbox as a list (`GET /api/v1/events`, the admin's events): one account's events, newest first."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.models import WebhookEvent
from core.platform.messages import Translations, render


def event_to_dict(row: WebhookEvent, translations: Translations | None = None) -> dict:
    """The event as the API shows it; `status_reason` in the language of `translations`."""
    return {
        "id": row.id,
        "integration_id": row.integration_id,
        "talk_id": row.talk_id,
        "action": row.action,
        "status": row.status,
        "status_reason": render(row.status_message, translations) or None,
        "status_reason_code": row.status_reason_code,
        "attempts": row.attempts,
        "error": row.error,
        "received_at": row.received_at.isoformat(),
        "processed_at": row.processed_at.isoformat() if row.processed_at else None,
        "request_id": row.request_id,
        "replay_run_id": row.replay_run_id,
    }


def list_events(session: Session, account_id: int, *, status: str | None = None, integration_id: int | None = None,
                replay_run_id: int | None = None, limit: int = 100, offset: int = 0) -> tuple[list[WebhookEvent], int]:
    query = sa.select(WebhookEvent).where(WebhookEvent.account_id == account_id)
    if status:
        query = query.where(WebhookEvent.status == status)
    if integration_id:
        query = query.where(WebhookEvent.integration_id == integration_id)
    if replay_run_id:
        query = query.where(WebhookEvent.replay_run_id == replay_run_id)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = list(session.scalars(query.order_by(WebhookEvent.id.desc()).limit(limit).offset(offset)))
    return rows, total
