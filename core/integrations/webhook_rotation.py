"""Replacing a leaked webhook url (issue 10 §4): a new token, the old url dead at once, amoCRM told.

The webhook url's path is its only secret (amoCRM signs nothing), so whoever has seen it can post fake
closed chats into an account. Rotation commits the new token first — from that moment the old url
answers 404 — and only then, when the integration is connected, subscribes the new url in amoCRM and
deletes the hook of the old one (new before old, so no close falls between). amoCRM being unreachable
does not undo the rotation: the result says what failed, and «register again» finishes the job."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from core.amocrm.client import AmoCrmClient
from core.amocrm.errors import AmoCrmError
from core.integrations.connect import WEBHOOK_EVENTS
from core.integrations.settings import rotate_webhook_token, webhook_url, webhook_url_forms
from core.models import Integration
from core.platform.db import utcnow
from core.platform.services import Services

log = logging.getLogger(__name__)


@dataclass
class Rotation:
    webhook_url: str
    connected: bool
    registered: bool = False
    old_hooks_deleted: int = 0
    error: str | None = None  # amoCRM's refusal or unreachability, without secrets

    def to_dict(self) -> dict:
        return {"webhook_url": self.webhook_url, "connected": self.connected, "webhook_registered": self.registered,
                "old_hooks_deleted": self.old_hooks_deleted, "amocrm_error": self.error}


def rotate_webhook(services: Services, integration: Integration, session) -> Rotation:
    """`integration` must already be known to belong to the caller's account."""
    old_url = webhook_url(services, integration)
    new_url = rotate_webhook_token(session, services, integration)
    connected = integration.status == "connected"
    session.commit()  # the old url stops answering now, whatever amoCRM says next
    log.info("integration %s: webhook url rotated", integration.id)
    result = Rotation(new_url, connected)
    if not connected:
        return result
    client = AmoCrmClient(services, integration.id)
    try:
        client.register_webhook(new_url, list(WEBHOOK_EVENTS))
        integration.webhook_registered_at = utcnow()
        integration.webhook_disabled = False
        session.commit()
        result.registered = True
        old_forms = webhook_url_forms(old_url)  # with and without the slash Kommo's form insists on
        for hook in client.list_webhooks():
            if hook.get("destination") in old_forms and client.delete_webhook(hook["destination"]):
                result.old_hooks_deleted += 1
    except AmoCrmError as exc:
        session.rollback()
        result.error = str(exc)
        log.warning("integration %s: amoCRM did not take the rotated webhook: %s", integration.id, type(exc).__name__)
    return result
