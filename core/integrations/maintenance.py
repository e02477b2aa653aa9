"""Keeping integrations alive between chats.

- `refresh_tokens_ahead(services)`: amoCRM revokes a refresh token left unused for three months, and an
  integration whose site gets no chats for that long never refreshes on its own. Every integration
  whose tokens were last refreshed (or connected) `REFRESH_AHEAD_DAYS` ago or more is refreshed through
  `TokenManager` (lock, re-read, compare-and-swap; a rejection marks it `needs_reauth`).
- `check_webhooks(services)`: amoCRM disables a hook after 100 failed deliveries and says so only in
  its own UI, so every connected integration's hook is read back (`GET /api/v4/webhooks`) and
  `webhook_disabled` / `webhook_registered_at` / `webhook_checked_at` are set from what amoCRM says.

`run_periodic(services)` runs the first two; the worker's sweeper thread sends it every 30 minutes
(workers/sweeper.py → `chatsource.run_maintenance`). Replaying events by filter is core.inbox.replay.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from core.amocrm.errors import AmoCrmError, ReauthRequired
from core.models import Integration
from core.platform.crypto import SecretUnreadable
from core.platform.db import utcnow
from core.platform.services import Services

log = logging.getLogger(__name__)

REFRESH_AHEAD_DAYS = 7


@dataclass
class Outcome:
    integration_id: int
    result: str  # refreshed | ok | missing | disabled | needs_reauth | error
    detail: str | None = None


# --- tokens --------------------------------------------------------------------------------------

def refresh_tokens_ahead(services: Services, *, now: datetime | None = None,
                         max_age_days: float = REFRESH_AHEAD_DAYS) -> list[Outcome]:
    """Refresh every connected integration whose tokens are `max_age_days` old or older."""
    from core.amocrm.tokens import TokenManager

    now = now or utcnow()
    cutoff = now - timedelta(days=max_age_days)
    refreshed_at = sa.func.coalesce(Integration.token_refreshed_at, Integration.connected_at)
    with services.session_factory() as session:
        due = list(session.scalars(
            sa.select(Integration.id)
            .where(Integration.status == "connected", Integration.refresh_token_enc.is_not(None),
                   sa.or_(refreshed_at.is_(None), refreshed_at <= cutoff))
            .order_by(Integration.id)
        ))
    manager = TokenManager(services)
    outcomes = []
    for integration_id in due:
        try:
            manager.access_token(integration_id, force_refresh=True)
        except ReauthRequired as exc:  # the manager has marked it needs_reauth; the dashboard says so
            outcomes.append(Outcome(integration_id, "needs_reauth", str(exc)))
            log.warning("integration %s: refresh ahead of time refused: %s", integration_id, exc)
        except AmoCrmError as exc:  # transient: the next run (30 minutes on) tries again
            outcomes.append(Outcome(integration_id, "error", str(exc)))
            log.warning("integration %s: refresh ahead of time failed, will retry: %s", integration_id, exc)
        else:
            outcomes.append(Outcome(integration_id, "refreshed"))
            log.info("integration %s: amoCRM tokens refreshed ahead of time", integration_id)
    return outcomes


# --- webhooks ------------------------------------------------------------------------------------

def check_webhooks(services: Services, *, now: datetime | None = None,
                   integration_ids: list[int] | None = None) -> list[Outcome]:
    """Read each connected integration's hook back from amoCRM and store what it says."""
    from core.amocrm.client import AmoCrmClient
    from core.integrations.connect import WEBHOOK_EVENTS
    from core.integrations.settings import our_webhook, webhook_url, webhook_url_forms

    now = now or utcnow()
    with services.session_factory() as session:
        stmt = sa.select(Integration).where(Integration.status == "connected", Integration.access_token_enc.is_not(None))
        if integration_ids is not None:
            stmt = stmt.where(Integration.id.in_(integration_ids or [0]))
        targets = []
        for integration in session.scalars(stmt.order_by(Integration.id)):
            try:
                targets.append((integration.id, webhook_url(services, integration)))
            except SecretUnreadable:
                log.warning("integration %s: the webhook url cannot be decrypted; skipped", integration.id)
    outcomes = []
    for integration_id, url in targets:
        try:
            hooks = AmoCrmClient(services, integration_id).find_webhooks(webhook_url_forms(url))
        except ReauthRequired as exc:
            outcomes.append(Outcome(integration_id, "needs_reauth", str(exc)))
            continue
        except AmoCrmError as exc:
            outcomes.append(Outcome(integration_id, "error", str(exc)))
            log.warning("integration %s: could not read the webhooks from amoCRM: %s", integration_id, exc)
            continue
        hook = our_webhook(hooks, WEBHOOK_EVENTS)
        values: dict = {"webhook_checked_at": now}
        if hook is None or not set(WEBHOOK_EVENTS) <= set(hook.get("settings") or []):
            values.update(webhook_registered_at=None, webhook_disabled=False)
            outcome = Outcome(integration_id, "missing")
        elif hook.get("disabled"):
            values.update(webhook_disabled=True)
            outcome = Outcome(integration_id, "disabled")
        else:
            values.update(webhook_disabled=False,
                          webhook_registered_at=sa.func.coalesce(
                              Integration.webhook_registered_at,
                              sa.bindparam(None, now, type_=Integration.webhook_registered_at.type)))
            outcome = Outcome(integration_id, "ok")
        with services.session_factory() as session:
            session.execute(sa.update(Integration).where(Integration.id == integration_id).values(**values)
                            .execution_options(synchronize_session=False))
            session.commit()
        if outcome.result != "ok":
            log.warning("integration %s: amoCRM webhook is %s", integration_id, outcome.result)
        outcomes.append(outcome)
    return outcomes


def run_periodic(services: Services, *, now: datetime | None = None) -> dict:
    """What the worker runs every 30 minutes; returns a summary for the log."""
    summary: dict[str, dict[str, int]] = {"tokens": {}, "webhooks": {}}
    for name, outcomes in (("tokens", refresh_tokens_ahead(services, now=now)), ("webhooks", check_webhooks(services, now=now))):
        for outcome in outcomes:
            summary[name][outcome.result] = summary[name].get(outcome.result, 0) + 1
    return summary
