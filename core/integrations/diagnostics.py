"""«Проверить интеграцию»: walk the whole path a chat takes and say, for each step, whether it will
work and how to fix it — before the first real chat is lost.

`check_integration` returns `Check`s in the order a chat travels: connected → token works
(`GET /api/v4/account`) → webhook registered in amoCRM and not disabled → session custom field still
exists → defaults and messenger mappings point at existing entities → integration active → the last
closed chat became a request. Each check is `ok=True` (passed), `ok=False` (failed; `fix` says what
to do) or `ok=None` (nothing to judge yet, e.g. no chat has been closed so far, or skipped because an
earlier step failed).

Messages are English gettext msgids with `%(name)s` placeholders (`params`), marked with `N_` so the
web layer's catalogue carries their translations; core stays free of Flask. `Check.to_dict()` gives
the English text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.access.ownership import get_owned
from core.amocrm.errors import AmoCrmError, ReauthRequired
from core.inbox import event_status
from core.inbox.event_status import EventStatus
from core.integrations.connect import WEBHOOK_EVENTS
from core.models import Campaign, ChatRequest, Integration, Site, Source, WebhookEvent
from core.platform.db import utcnow
from core.platform.errors import NotFound
from core.platform.messages import N_, Message, render
from core.platform.services import Services
from core.platform.time_zones import account_time_zone
from core.reporting.report import ATTRIBUTION_LABELS, get_zone, local_day_bounds

CHECK_TITLES = {
    "connected": N_("amoCRM account connected"),
    "token": N_("Access token works"),
    "webhook": N_("Webhook registered in amoCRM"),
    "session_field": N_("Session custom field exists"),
    "defaults": N_("Default for chats without a session"),
    "mappings": N_("Messenger mapping"),
    "active": N_("Integration active"),
    "last_talk": N_("Last closed chat recorded"),
}


@dataclass
class Check:
    name: str
    ok: bool | None
    message: str
    fix: str | None = None
    params: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        return CHECK_TITLES[self.name]

    @property
    def said(self) -> Message:
        """The check's text as a message (its params may be messages too: an attribution kind, a reason)."""
        return Message(f"check.{self.name}", self.message, self.params)

    @property
    def said_fix(self) -> Message | None:
        return Message(f"check.{self.name}.fix", self.fix, self.params) if self.fix else None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "ok": self.ok,
            "message": render(self.said),
            "fix": render(self.said_fix) if self.fix else None,
        }


def _skipped(name: str) -> Check:
    return Check(name, None, N_("Not checked: connect the amoCRM account first."))


def check_integration(session: Session, services: Services, account_id: int, integration_id: int) -> list[Check]:
    """Run every check. amoCRM is called at most a few times (account, webhooks, custom fields).
    Updates the stored webhook state when amoCRM reports it otherwise; the caller commits."""
    integration = get_owned(session, Integration, account_id, integration_id)
    checks: list[Check] = []
    connected = integration.status == "connected" and bool(integration.access_token_enc)
    if integration.status == "needs_reauth":
        checks.append(Check("connected", False, N_("amoCRM revoked the authorisation (%(error)s)."),
                            N_("Press «Connect» and allow access again with an amoCRM administrator."),
                            {"error": integration.last_error or "invalid_grant"}))
    elif not connected:
        checks.append(Check("connected", False, N_("The integration is not connected to amoCRM."),
                            N_("Replace YOURDOMAIN in «AmoCRM URL» and «Token URL» and press «Connect».")))
    else:
        checks.append(Check("connected", True, N_("Connected to %(account)s."),
                            params={"account": integration.amo_account_name or integration.amo_subdomain or integration.api_base_url or "amoCRM"}))

    token_ok = False
    if connected:
        from core.amocrm.client import AmoCrmClient

        client = AmoCrmClient(services, integration.id)
        token_ok = _check_token(checks, client)
        if token_ok:
            _check_webhook(checks, client, services, integration)
            _check_session_field(checks, client, integration)
        else:
            checks.append(_skipped("webhook"))
            checks.append(_skipped("session_field"))
    else:
        checks.extend([_skipped("token"), _skipped("webhook")])
        if integration.session_field_id:
            checks.append(_skipped("session_field"))
        else:
            checks.append(_no_session_field())

    checks.append(_check_defaults(session, integration))
    checks.append(_check_mappings(session, integration))
    if integration.is_active:
        checks.append(Check("active", True, N_("The integration is active: closed chats become requests.")))
    else:
        checks.append(Check("active", False, N_("The integration is switched off: closed chats are stored but not turned into requests."),
                            N_("Tick «Active» and press «Save».")))
    checks.append(_check_last_talk(session, integration))
    return checks


def _check_token(checks: list[Check], client) -> bool:
    try:
        account = client.get_account()
    except ReauthRequired as exc:
        checks.append(Check("token", False, N_("amoCRM refuses our tokens: %(error)s"),
                            N_("Press «Connect» and allow access again."), {"error": str(exc)}))
        return False
    except AmoCrmError as exc:
        checks.append(Check("token", False, N_("amoCRM did not answer GET /api/v4/account: %(error)s"),
                            N_("Check that the amoCRM account is paid and reachable, then check again in a minute."),
                            {"error": str(exc)}))
        return False
    checks.append(Check("token", True, N_("GET /api/v4/account answers: account %(name)s (id %(id)s)."),
                        params={"name": account.get("name") or account.get("subdomain") or "?", "id": account.get("id")}))
    return True


def _check_webhook(checks: list[Check], client, services: Services, integration: Integration) -> None:
    from core.integrations.settings import our_webhook, webhook_url, webhook_url_forms

    url = webhook_url(services, integration)
    try:
        hooks = client.find_webhooks(webhook_url_forms(url))
    except AmoCrmError as exc:
        checks.append(Check("webhook", False, N_("Could not read the webhooks from amoCRM: %(error)s"),
                            N_("Check again in a minute."), {"error": str(exc)}))
        return
    if not hooks:
        integration.webhook_registered_at = None
        checks.append(Check("webhook", False, N_("amoCRM has no webhook with our «Webhook url»: closed chats will not reach us."),
                            N_("Press «Register the webhook in amoCRM», or add the «Webhook url» in amoCRM → Settings → Integrations → Webhooks for the event «Talk changed».")))
        return
    hook = our_webhook(hooks, WEBHOOK_EVENTS)
    events = set(hook.get("settings") or [])
    if hook.get("disabled"):
        integration.webhook_disabled = True
        checks.append(Check("webhook", False, N_("amoCRM disabled our webhook (it stops after many failed deliveries)."),
                            N_("Make sure this server answers, then press «Register the webhook in amoCRM» or enable it in amoCRM → Settings → Integrations → Webhooks.")))
        return
    missing = sorted(set(WEBHOOK_EVENTS) - events)
    if missing:
        checks.append(Check("webhook", False, N_("The webhook is not subscribed to «Talk changed» (update_talk)."),
                            N_("Press «Register the webhook in amoCRM»: it adds the event and keeps the others.")))
        return
    integration.webhook_disabled = False
    if integration.webhook_registered_at is None:
        integration.webhook_registered_at = utcnow()
    checks.append(Check("webhook", True, N_("Registered for «Talk changed» (update_talk) and enabled.")))


def _no_session_field() -> Check:
    return Check("session_field", False, N_("No session custom field is chosen."),
                 N_("Choose it in «Session custom field»; create a text field in amoCRM first if none fits."))


def _check_session_field(checks: list[Check], client, integration: Integration) -> None:
    if not integration.session_field_id:
        checks.append(_no_session_field())
        return
    entity = integration.session_field_entity or "leads"
    try:
        fields = client.list_custom_fields(entity)
    except AmoCrmError as exc:
        checks.append(Check("session_field", False, N_("Could not read the custom fields from amoCRM: %(error)s"),
                            N_("Check again in a minute."), {"error": str(exc)}))
        return
    found = next((f for f in fields if f.get("id") == integration.session_field_id), None)
    if found is None:
        checks.append(Check("session_field", False,
                            N_("The field %(name)s (id %(id)s) no longer exists in amoCRM: sessions cannot be read."),
                            N_("Choose another field in «Session custom field» and press «Save»."),
                            {"name": integration.session_field_name or "?", "id": integration.session_field_id}))
        return
    checks.append(Check("session_field", True, N_("The field %(name)s (id %(id)s) exists."),
                        params={"name": found.get("name") or "?", "id": found.get("id")}))


def _exists(session: Session, model, account_id: int, id_) -> object | None:
    if not id_:
        return None
    try:
        return get_owned(session, model, account_id, id_)
    except NotFound:
        return None


def _check_defaults(session: Session, integration: Integration) -> Check:
    account_id = integration.account_id
    if integration.traffic_type == "campaign":
        campaign = _exists(session, Campaign, account_id, integration.default_campaign_id)
        if campaign is None:
            return Check("defaults", False, N_("No default ad campaign: chats without a session have nowhere to go."),
                         N_("Choose the default ad campaign in «Traffic type» and press «Save»."))
        return Check("defaults", True, N_("Chats without a session go to the ad campaign %(name)s."), params={"name": campaign.name})
    source = _exists(session, Source, account_id, integration.default_source_id)
    site = _exists(session, Site, account_id, integration.default_site_id)
    if source is None or site is None:
        return Check("defaults", False, N_("The default source or site is not chosen (or was deleted)."),
                     N_("Choose the default source and site in «Traffic type» and press «Save»."))
    return Check("defaults", True, N_("Chats without a session go to the source %(source)s on the site %(site)s."),
                 params={"source": source.name, "site": site.name})


def _check_mappings(session: Session, integration: Integration) -> Check:
    from core.amocrm.messengers import messenger_said

    broken = []
    for mapping in integration.mappings:
        if mapping.campaign_id:
            ok = _exists(session, Campaign, integration.account_id, mapping.campaign_id) is not None
        else:
            ok = (_exists(session, Source, integration.account_id, mapping.source_id) is not None
                  and _exists(session, Site, integration.account_id, mapping.site_id) is not None)
        if not ok:
            broken.append(messenger_said(mapping.origin))
    if broken:
        return Check("mappings", False, N_("These rows point at deleted entities: %(names)s."),
                     N_("Fix them in «Messengers and sources» and press «Save»."),
                     {"names": broken})
    if not integration.mappings:
        return Check("mappings", True, N_("No messenger is mapped: chats without a session go to the default."))
    return Check("mappings", True, N_("%(count)s messenger(s) mapped."), params={"count": len(integration.mappings)})


def _check_last_talk(session: Session, integration: Integration) -> Check:
    event = session.scalar(
        sa.select(WebhookEvent)
        .where(WebhookEvent.integration_id == integration.id, WebhookEvent.status != EventStatus.SKIPPED)
        .order_by(WebhookEvent.id.desc())
        .limit(1)
    )
    if event is None:
        last_any = session.scalar(sa.select(sa.func.max(WebhookEvent.received_at)).where(WebhookEvent.integration_id == integration.id))
        if last_any is not None:
            return Check("last_talk", None, N_("amoCRM's webhooks arrive, but no chat has been closed yet."),
                         N_("Close the test chat in amoCRM (finish the conversation) and check again."))
        return Check("last_talk", None, N_("No chat has reached us yet."),
                     N_("Leave a test message in the amoCRM multi-widget on your site, close the conversation in amoCRM, then check again."))
    params = {"talk": event.talk_id, "error": event.error or event.status_message or ""}
    if event.status == EventStatus.DONE and event.request_id:
        request = session.get(ChatRequest, event.request_id)
        params["request"] = event.request_id
        kind = ATTRIBUTION_LABELS.get(request.attribution) if request is not None else None
        params["attribution"] = kind() if kind else "?"
        return Check("last_talk", True, N_("Chat %(talk)s became request #%(request)s (attribution: %(attribution)s)."), params=params)
    if event.status in event_status.PENDING:
        return Check("last_talk", None, N_("Chat %(talk)s is being processed right now."), N_("Check again in a few seconds."), params)
    if event.status == EventStatus.IGNORED:
        return Check("last_talk", False, N_("Chat %(talk)s arrived while the integration was switched off."),
                     N_("Activate the integration, then replay the event in «Webhook events»."), params)
    if event.status == EventStatus.PARKED:
        return Check("last_talk", False, N_("Chat %(talk)s waits for the amoCRM account to be reconnected."),
                     N_("Press «Connect»: waiting chats are processed right after."), params)
    if event.status == EventStatus.FAILED:
        return Check("last_talk", False, N_("Chat %(talk)s failed: %(error)s"),
                     N_("Fix the cause, then replay the event in «Webhook events»."), params)
    return Check("last_talk", True, N_("Chat %(talk)s was handled (%(error)s)."), params=params)


def requests_today(session: Session, account_id: int, integration_ids, now: datetime | None = None) -> dict[int, int]:
    """Requests created today — the account's day, in its time zone, as Raw data and the dashboard
    count it — per integration of `integration_ids` that belongs to the account (0 when none), in one
    query on the (account, integration, created) index."""
    ids = list(integration_ids)
    zone = get_zone(account_time_zone(session, account_id))
    today = (now or utcnow()).astimezone(zone).date()
    start, end = local_day_bounds(today, today, zone)
    counts = dict(session.execute(
        sa.select(ChatRequest.integration_id, sa.func.count())
        .where(ChatRequest.account_id == account_id, ChatRequest.integration_id.in_(ids),
               ChatRequest.created_at >= start, ChatRequest.created_at < end)
        .group_by(ChatRequest.integration_id)
    ).all()) if ids else {}
    return {i: counts.get(i, 0) for i in ids}
