"""Deleting an integration (issue 15 §2): its requests stay, its webhook leaves amoCRM when possible.

A draft — never connected, nothing received — is removed outright: nothing refers to it. Any other
integration keeps its row, marked `deleted_at`, so that its requests stay in the reports with their
integration's name; it leaves every list, is switched off, forgets its tokens, and gets a new webhook
token nobody knows, so its old url answers 404 from the commit on. Before that, while the tokens still
work, its hook is deleted in amoCRM (both url forms); amoCRM being unreachable does not stop the
deletion — the result says so, and the admin removes the hook by hand."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.amocrm.client import AmoCrmClient
from core.amocrm.errors import AmoCrmError
from core.integrations.settings import rotate_webhook_token, webhook_url, webhook_url_forms
from core.models import ChatRequest, Integration, WebhookEvent
from core.platform.db import utcnow
from core.platform.services import Services

log = logging.getLogger(__name__)


@dataclass
class Removal:
    name: str
    requests_kept: int
    webhook_removed: bool = False
    webhook_error: str | None = None  # amoCRM's refusal or unreachability, without secrets
    was_draft: bool = False


def is_draft(session: Session, integration: Integration) -> bool:
    """Never connected and nothing received: a «Подключить» that did not reach the end."""
    if integration.connected_at is not None or integration.status != "new":
        return False
    return not session.scalar(sa.select(sa.exists().where(WebhookEvent.integration_id == integration.id)))


def delete_integration(session: Session, services: Services, integration: Integration) -> Removal:
    """`integration` must already be known to belong to the caller's account. Commits."""
    kept = session.scalar(sa.select(sa.func.count()).select_from(ChatRequest)
                          .where(ChatRequest.integration_id == integration.id)) or 0
    result = Removal(name=integration.name, requests_kept=kept)
    if is_draft(session, integration) and not kept:
        session.delete(integration)
        session.commit()
        result.was_draft = True
        return result
    if integration.status == "connected" and integration.access_token_enc:
        session.commit()  # the client works in sessions of its own
        _remove_hook(services, integration, result)
    integration.deleted_at = utcnow()
    integration.is_active = False
    integration.status = "new"
    integration.access_token_enc = integration.refresh_token_enc = None
    integration.token_expires_at = None
    integration.token_version += 1
    integration.webhook_registered_at = None
    rotate_webhook_token(session, services, integration)  # the old url answers 404 from now on
    session.commit()
    log.info("integration %s deleted; %s requests kept", integration.id, kept)
    return result


def _remove_hook(services: Services, integration: Integration, result: Removal) -> None:
    forms = webhook_url_forms(webhook_url(services, integration))
    client = AmoCrmClient(services, integration.id)
    try:
        for hook in client.list_webhooks():
            if hook.get("destination") in forms and client.delete_webhook(hook["destination"]):
                result.webhook_removed = True
    except AmoCrmError as exc:
        result.webhook_error = str(exc)
