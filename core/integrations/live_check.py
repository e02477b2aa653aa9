"""«Проверить на тестовом обращении»: wait for the next chat of an integration and tell, stage by
stage, how far it got — the live version of the spec's last line («Для проверки корректности работы
интеграции оставьте тестовое обращение в мультивиджете amoCRM»).

`start_check` notes the integration's newest inbox row; `check_state` reads what came after it: the
first talk whose webhook arrived (or that reconciliation found), its closing, the worker fetching the
talk and contact, the session field's value, the attribution and the recorded request. Nothing is
kept besides the start: every poll reads the inbox and the requests again, so the stages are exactly
what the pipeline did. A stage that does not come gets what to fix; after `GIVE_UP_AFTER` the check
stops and says what it saw.

Texts are English gettext msgids with `%(name)s` params (`N_`), like core.integrations.diagnostics; the web layer
translates them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.access.ownership import get_owned
from core.amocrm.messengers import channel_for_origin
from core.inbox import attribution_reasons, event_reasons
from core.inbox.event_status import EventStatus
from core.inbox.webhooks import RECONCILIATION_SOURCE, SOURCE_KEY, is_closed_item
from core.models import ChatRequest, Integration, LiveCheck, WebhookEvent
from core.platform.db import utcnow
from core.platform.errors import NotFound
from core.platform.text import N_

GIVE_UP_AFTER = timedelta(minutes=10)
# How long the first webhook may take before the page says what usually keeps it away.
WEBHOOK_PATIENCE = timedelta(minutes=1)
# A closed chat a worker has not taken after this long: the worker is probably not running.
WORKER_PATIENCE = timedelta(minutes=1)
STAGE_KEYS = ("webhook", "closed", "fetched", "session_field", "attribution", "recorded")



STAGE_TITLES = {
    "webhook": N_("Webhook received"),
    "closed": N_("Chat finished"),
    "fetched": N_("Talk and contact fetched from amoCRM"),
    "session_field": N_("Session field"),
    "attribution": N_("Attribution"),
    "recorded": N_("Request recorded"),
}


@dataclass
class Stage:
    key: str
    state: str  # done | waiting | failed | warning | pending (an earlier stage has not come yet)
    message: str | None = None
    fix: str | None = None
    params: dict = field(default_factory=dict)
    at: datetime | None = None

    @property
    def title(self) -> str:
        return STAGE_TITLES[self.key]


@dataclass
class CheckState:
    check_id: int
    integration_id: int
    started_at: datetime
    deadline: datetime
    status: str  # waiting | done | stopped (a stage failed) | gave_up
    stages: list[Stage]
    problems: list[Stage]  # what is wrong with the integration now, whatever the chat does
    talk_id: int | None = None
    request_id: int | None = None
    request_query: str | None = None  # what finds the request in Raw data

    @property
    def finished(self) -> bool:
        return self.status != "waiting"


def start_check(session: Session, account_id: int, integration_id: int, started_by: str | None = None) -> LiveCheck:
    integration = get_owned(session, Integration, account_id, integration_id)
    newest = session.scalar(sa.select(sa.func.max(WebhookEvent.id)).where(WebhookEvent.integration_id == integration.id))
    check = LiveCheck(account_id=account_id, integration_id=integration.id, started_at=utcnow(),
                      started_by=started_by, after_event_id=newest or 0)
    session.add(check)
    session.flush()
    return check


def get_check(session: Session, account_id: int, integration_id: int, check_id: int) -> LiveCheck:
    check = session.get(LiveCheck, check_id)
    if check is None or check.account_id != account_id or check.integration_id != integration_id:
        raise NotFound("live check")
    return check


def check_state(session: Session, check: LiveCheck, now: datetime | None = None) -> CheckState:
    now = now or utcnow()
    integration = session.get(Integration, check.integration_id)
    events = list(session.scalars(
        sa.select(WebhookEvent).where(WebhookEvent.integration_id == check.integration_id,
                                      WebhookEvent.id > check.after_event_id)
        .order_by(WebhookEvent.id).limit(500)))
    # The first talk finished since the start; until one is, the first talk heard of (a talk that was
    # already open and only changed must not hide the test chat once that is closed).
    first_closed = next((e for e in events if is_closed_item(e.item)), None)
    talk_id = (first_closed or events[0]).talk_id if events else None
    talk_events = [e for e in events if e.talk_id == talk_id]
    state = CheckState(check.id, check.integration_id, check.started_at, check.started_at + GIVE_UP_AFTER, "waiting",
                       [], integration_problems(integration), talk_id=talk_id)
    waited = now - check.started_at
    stages = [_webhook_stage(talk_events, state.problems, waited)]
    closed = next((e for e in talk_events if is_closed_item(e.item)), None)
    if talk_events:
        stages.append(_closed_stage(closed))
    request = _request_of(session, integration, closed) if closed else None
    if closed:
        stages.append(_fetched_stage(closed, request, now))
    if request:
        stages += [_field_stage(request), _attribution_stage(request), _recorded_stage(request)]
        state.request_id = request.id
        state.request_query = request.phone or request.email or request.contact_name
    shown = {s.key for s in stages}
    stages += [Stage(key, "pending") for key in STAGE_KEYS if key not in shown]
    state.stages = stages
    if request:
        state.status = "done"
    elif any(s.state == "failed" for s in stages):
        state.status = "stopped"
    elif waited >= GIVE_UP_AFTER:
        state.status = "gave_up"
    return state


def integration_problems(integration: Integration) -> list[Stage]:
    """What keeps any chat from arriving or from being recorded, as it stands now."""
    problems = []
    if integration.status == "needs_reauth":
        problems.append(Stage("webhook", "failed", N_("amoCRM revoked the authorisation."),
                              N_("Press «Connect» and allow access again.")))
    elif integration.status != "connected":
        problems.append(Stage("webhook", "failed", N_("The integration is not connected to amoCRM."),
                              N_("Connect the amoCRM account (step 1): only then is the webhook registered.")))
    elif integration.webhook_disabled:
        problems.append(Stage("webhook", "failed", N_("amoCRM has disabled our webhook."),
                              N_("Press «Register the webhook in amoCRM» under «Webhook url» (step 2).")))
    elif integration.webhook_registered_at is None:
        problems.append(Stage("webhook", "failed", N_("The webhook is not registered in amoCRM."),
                              N_("Press «Register the webhook in amoCRM» under «Webhook url» (step 2).")))
    if not integration.is_active:
        problems.append(Stage("recorded", "failed", N_("The integration is switched off: a chat is received but not recorded."),
                              N_("Tick «Active» and press «Save».")))
    return problems


def _webhook_stage(talk_events: list[WebhookEvent], problems: list[Stage], waited: timedelta) -> Stage:
    if not talk_events:
        stage = Stage("webhook", "waiting", N_("Waiting for a chat: write to the site chat or a messenger of the amoCRM multi-widget."))
        webhook_problem = next((p for p in problems if p.key == "webhook"), None)
        if webhook_problem:
            stage.fix = webhook_problem.fix
        elif waited >= WEBHOOK_PATIENCE:
            stage.fix = N_("No webhook yet. Check in amoCRM (Settings → Integrations → Webhooks) that our url is there and "
                           "ticked for «Беседа изменена» (update_talk); the reconciliation with amoCRM also finds a missed chat within its interval.")
        return stage
    first = talk_events[0]
    if (first.item or {}).get(SOURCE_KEY) == RECONCILIATION_SOURCE:
        return Stage("webhook", "warning", N_("No webhook came: the reconciliation with amoCRM found talk %(talk)s."),
                     N_("Check that our webhook is registered and not disabled in amoCRM."),
                     {"talk": first.talk_id}, first.received_at)
    return Stage("webhook", "done", N_("amoCRM reported talk %(talk)s (%(channel)s)."),
                 params={"talk": first.talk_id, "channel": channel_for_origin(first.item.get("origin"))},  # a code: the web layer names it
                 at=first.received_at)


def _closed_stage(closed: WebhookEvent | None) -> Stage:
    if closed is None:
        return Stage("closed", "waiting", N_("The chat is still open."),
                     N_("Close the conversation in amoCRM: a request is made when the chat is finished."))
    return Stage("closed", "done", N_("The talk was finished."), at=closed.received_at)


def _fetched_stage(closed: WebhookEvent, request: ChatRequest | None, now: datetime) -> Stage:
    if request is not None:
        return Stage("fetched", "done", N_("Contact: %(name)s %(phone)s"),
                     params={"name": request.contact_name or "—", "phone": request.phone or request.email or ""},
                     at=closed.processed_at or request.recorded_at)
    reason = closed.status_message
    if closed.status == EventStatus.IGNORED:
        if reason is not None and reason.code == event_reasons.CHANNEL_EXCLUDED.code:
            return Stage("fetched", "failed", N_("This channel is switched off: %(reason)s"),
                         N_("Tick the channel under «Which channels to pass» (step 5), press «Save», then replay the event."),
                         {"reason": reason}, closed.processed_at or closed.received_at)
        return Stage("fetched", "failed", N_("Not recorded: %(reason)s"), N_("Tick «Active» and press «Save», then replay the event."),
                     {"reason": reason}, closed.processed_at or closed.received_at)
    if closed.status == EventStatus.PARKED:
        return Stage("fetched", "failed", N_("Waiting for a reconnection: amoCRM revoked the authorisation."),
                     N_("Press «Connect» and allow access again; the chat is recorded then."), at=closed.received_at)
    if closed.status == EventStatus.FAILED:
        return Stage("fetched", "failed", N_("amoCRM could not be read: %(error)s"),
                     N_("Fix the error shown, then replay the event (Raw data → Replay events)."),
                     {"error": (closed.error or reason)[:300]}, closed.processed_at)
    stage = Stage("fetched", "waiting", N_("Waiting for the worker to fetch the talk and the contact (attempt %(attempt)s)."),
                  params={"attempt": max(closed.attempts, 1)})
    if closed.error:
        stage.fix, stage.params["error"] = N_("The last attempt failed: %(error)s. It is retried by itself."), closed.error[:300]
    elif now - closed.received_at >= WORKER_PATIENCE:
        stage.fix = N_("No worker has taken the chat yet: check that the worker process is running.")
    return stage


def _request_of(session: Session, integration: Integration, closed: WebhookEvent) -> ChatRequest | None:
    if closed.request_id:
        return session.get(ChatRequest, closed.request_id)
    if closed.status != EventStatus.DONE:
        return None
    return session.scalars(sa.select(ChatRequest).where(ChatRequest.integration_id == integration.id,
                                                        ChatRequest.talk_id == closed.talk_id)).first()


def _field_stage(request: ChatRequest) -> Stage:
    at = request.recorded_at
    reason = request.attribution_message
    if request.session_id:
        return Stage("session_field", "done", N_("The field holds session %(session)s."), params={"session": request.session_id}, at=at)
    if reason is not None and reason.mentions(attribution_reasons.SESSION_NOT_FOUND.code):
        return Stage("session_field", "failed", N_("The field holds a session this account does not have."),
                     N_("The main tracking code on the site is another account's: copy it again from «Sites»."), at=at)
    if reason is not None and reason.mentions(attribution_reasons.FIELD_NOT_A_NUMBER.code):
        return Stage("session_field", "failed", N_("The field holds something else than a session number."),
                     N_("Another script writes this field: choose a field only our script fills (step 3)."), at=at)
    if request.channel != "site_chat":
        return Stage("session_field", "warning", N_("The field is empty, as usual for a chat started in the messenger app."),
                     N_("To see the visit, open the chat from the chat button on your site."), at=at)
    return Stage("session_field", "failed", N_("The field is empty."),
                 N_("«Script for your site» is missing on that page or placed above the main tracking code: put it below the main code on every page (step 7)."),
                 at=at)


def _attribution_stage(request: ChatRequest) -> Stage:
    return Stage("attribution", "done", N_("%(kind)s: %(reason)s"),
                 params={"kind": request.attribution, "reason": request.attribution_message}, at=request.recorded_at)


def _recorded_stage(request: ChatRequest) -> Stage:
    return Stage("recorded", "done", N_("Request %(id)s is in Raw data."), params={"id": request.id}, at=request.recorded_at)
