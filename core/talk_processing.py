"""Inbox → requests. A worker holding an integration's batch lock claims up to 250 pending closed-talk
events at a time, fetches their contacts (and leads) from amoCRM in batched calls, attributes each
talk and inserts one request per talk (ON CONFLICT DO NOTHING on integration + talk).

Safety does not depend on the lock: claiming is an atomic status change and the unique constraint
makes the insert idempotent. The lock only makes a burst cost few amoCRM calls, because while one
batch is being fetched the next events pile up and are claimed together.
"""
from __future__ import annotations

import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core import attribution_reasons, event_reasons, event_status
from core.amocrm.client import AmoCrmClient
from core.amocrm.errors import AmoApiError, AmoBlocked, AmoCrmError, AmoTransient, ReauthRequired
from core.attribution import attribute, clean_session_value
from core.click_attribution import attribute_by_click
from core.contact_data import (
    contact_email,
    contact_name,
    contact_phone,
    contact_phone_raw,
    custom_field_value,
    custom_field_value_by_name,
)
from core.db import insert_ignoring_conflicts, utcnow
from core.event_status import EventStatus
from core.messages import Message
from core.messengers import channel_for_origin, excluded_channel_reason
from core.models import ChatRequest, Integration, WebhookEvent, stored_message
from core.ratelimit import RateLimitTimeout
from core.repeat_requests import mark_request as mark_repeat_request
from core.services import Services
from core.webhook_inbox import RECONCILIATION_SOURCE, SOURCE_KEY

log = logging.getLogger(__name__)

BATCH_SIZE = 250
BATCH_LOOP_SECONDS = 30.0
MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 600
STUCK_RECEIVED_SECONDS = 60
STUCK_PROCESSING_SECONDS = 180


@dataclass
class ProcessOutcome:
    status: str  # done | busy | nothing | retry | parked | failed (the outcome, not an EventStatus)
    processed: int = 0
    retry_in_seconds: float | None = None
    error: str | None = None
    to_enqueue: list[int] = field(default_factory=list)


def retry_delay_seconds(attempts: int) -> float:
    """Exponential backoff with jitter: 10 s, 20 s, 40 s … capped at 10 minutes."""
    base = min(RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0)), RETRY_MAX_SECONDS)
    return base * random.uniform(0.8, 1.2)


def process_event(services: Services, event_id: int) -> ProcessOutcome:
    """Entry point of the worker message for one inbox row; processes its integration's whole backlog."""
    with services.session_factory() as session:
        event = session.get(WebhookEvent, event_id)
        if event is None or event.status != EventStatus.RECEIVED:
            return ProcessOutcome("nothing")
        if event.next_attempt_at is not None:
            wait = (event.next_attempt_at - utcnow()).total_seconds()
            if wait > 0.5:  # came back before its backoff ended: wait for it rather than strand it
                return ProcessOutcome("retry", retry_in_seconds=wait, error=event.error)
        integration_id = event.integration_id
    with services.locks.try_lock(f"talk-batch:{integration_id}", timeout_s=BATCH_LOOP_SECONDS * 4) as acquired:
        if not acquired:
            # The holder drains every due event and looks again after releasing the lock, so this
            # event (committed before its message was sent) cannot be left behind.
            return ProcessOutcome("busy")
        outcome = _drain(services, integration_id, event_id)
    if outcome.status == "done":
        leftover = oldest_due_event(services, integration_id)
        if leftover is not None:
            outcome.to_enqueue.append(leftover)
    return outcome


def oldest_due_event(services: Services, integration_id: int) -> int | None:
    """An event that arrived while the lock was being released (or past the loop's time budget)."""
    with services.session_factory() as session:
        return session.scalar(due_events(integration_id, utcnow(), 1))


def due_events(integration_id: int, now: datetime, limit: int):
    """The ids of an integration's events waiting for a worker whose backoff (if any) has passed, oldest first."""
    return (
        sa.select(WebhookEvent.id)
        .where(
            WebhookEvent.integration_id == integration_id,
            WebhookEvent.status == EventStatus.RECEIVED,
            sa.or_(WebhookEvent.next_attempt_at.is_(None), WebhookEvent.next_attempt_at <= now),
        )
        .order_by(WebhookEvent.id)
        .limit(limit)
    )


def _drain(services: Services, integration_id: int, trigger_event_id: int) -> ProcessOutcome:
    started = time.monotonic()
    total = 0
    outcome = ProcessOutcome("done")
    while time.monotonic() - started < BATCH_LOOP_SECONDS:
        with services.session_factory() as session:
            claim = claim_batch(session, integration_id, BATCH_SIZE)
            session.commit()
        if not claim:
            break
        try:
            total += process_claimed(services, integration_id, claim)
        except ReauthRequired as exc:
            with services.session_factory() as session:
                park_events(session, integration_id, str(exc))
                session.commit()
            return ProcessOutcome("parked", processed=total, error=str(exc))
        except (AmoTransient, AmoBlocked, AmoApiError, RateLimitTimeout, AmoCrmError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            with services.session_factory() as session:
                delay = release_for_retry(session, claim, error)
                _record_integration_error(session, integration_id, error)
                session.commit()
            with services.session_factory() as session:
                trigger = session.get(WebhookEvent, trigger_event_id)
                if trigger is not None and trigger.status == EventStatus.FAILED:
                    return ProcessOutcome("failed", processed=total, error=error)
            return ProcessOutcome("retry", processed=total, retry_in_seconds=delay, error=error)
    outcome.processed = total
    return outcome


def claim_batch(session: Session, integration_id: int, limit: int) -> list[int]:
    """Atomically move up to `limit` due events from received to processing; returns their ids."""
    now = utcnow()
    token = secrets.token_hex(8)
    ids = list(session.scalars(due_events(integration_id, now, limit)))
    if not ids:
        return []
    session.execute(
        sa.update(WebhookEvent)
        .where(WebhookEvent.id.in_(ids), WebhookEvent.status == EventStatus.RECEIVED)
        .values(status=EventStatus.PROCESSING, claim_token=token, claimed_at=now, attempts=WebhookEvent.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return list(session.scalars(sa.select(WebhookEvent.id).where(WebhookEvent.claim_token == token)))


def process_claimed(services: Services, integration_id: int, event_ids: list[int]) -> int:
    """Fetch, attribute and record the claimed events. amoCRM errors propagate to the caller."""
    with services.session_factory() as session:
        integration = session.get(Integration, integration_id)
        events = list(session.scalars(sa.select(WebhookEvent).where(WebhookEvent.id.in_(event_ids)).order_by(WebhookEvent.id)))
        if integration is None:
            return 0
        if not integration.is_active:
            _finish(events, EventStatus.IGNORED, event_reasons.SWITCHED_OFF_BEFORE_PROCESSING())
            session.commit()
            return 0
        if integration.status == "needs_reauth":
            raise ReauthRequired("amoCRM authorisation is no longer valid: reconnect the integration")

        # A talk already recorded (delivered twice, closed again) needs no amoCRM call.
        talk_ids = {e.talk_id for e in events}
        existing = dict(
            session.execute(
                sa.select(ChatRequest.talk_id, ChatRequest.id).where(
                    ChatRequest.integration_id == integration_id, ChatRequest.talk_id.in_(talk_ids)
                )
            ).all()
        )
        pending = []
        for event in events:
            # The channel is checked again here: it may have been switched off since the webhook,
            # and a replay after switching it on must find it on.
            excluded = excluded_channel_reason(integration.excluded_channels, event.item.get("origin"))
            if event.talk_id in existing:
                _finish([event], EventStatus.DONE, event_reasons.ALREADY_RECORDED(), existing[event.talk_id])
            elif excluded:
                _finish([event], EventStatus.IGNORED, excluded)
            else:
                pending.append(event)
        session.commit()
        if not pending:
            return 0

        contact_ids = {_int(e.item.get("contact_id")) for e in pending} - {None}
        client = AmoCrmClient(services, integration_id)
        contacts = client.get_contacts(sorted(contact_ids)) if contact_ids else {}
        # The lead is needed for the session field when it is the chosen entity, and when the chosen
        # contact's field is empty (the value may be on the lead): still one batched call.
        lead_ids = {_lead_id(e.item) for e in pending
                    if integration.session_field_entity == "leads"
                    or session_field_value(integration, contacts.get(_int(e.item.get("contact_id"))), "contacts") is None} - {None}
        leads = client.get_leads(sorted(lead_ids)) if integration.session_field_id and lead_ids else {}

        mappings = {m.origin: m for m in integration.mappings}
        recorded = 0
        for event in pending:
            try:
                request_id = record_request(session, integration, event, contacts, leads, mappings)
            except Exception as exc:  # one bad item must not hold back the batch
                session.rollback()
                log.exception("event %s could not be recorded", event.id)
                event = session.get(WebhookEvent, event.id)
                _finish([event], EventStatus.FAILED, None)
                event.error = f"{type(exc).__name__}: {exc}"[:2000]
                session.commit()
                continue
            _finish([event], EventStatus.DONE, None, request_id)
            session.commit()
            recorded += 1
        if integration.last_error and recorded:
            integration.last_error = None
            session.commit()
        return recorded


def record_request(session: Session, integration: Integration, event: WebhookEvent, contacts: dict, leads: dict, mappings: dict) -> int:
    item = event.item
    contact_id = _int(item.get("contact_id"))
    lead_id = _lead_id(item)
    contact = contacts.get(contact_id) if contact_id else None
    field_value, field_note = read_session_field(integration, leads.get(lead_id) if lead_id else None, contact)
    origin = (item.get("origin") or "").strip() or None
    result = attribute(session, integration, session_field_value=field_value, origin=origin, mappings=mappings,
                       field_note=field_note)
    created_at = _ts(item.get("created_at")) or event.received_at
    result = attribute_by_click(session, integration, result, origin=origin, talk_id=event.talk_id,
                                talk_created_at=created_at)
    vs = result.session
    reason = result.reason
    if item.get(SOURCE_KEY) == RECONCILIATION_SOURCE:  # found by core.reconciliation, not by a webhook
        reason = attribution_reasons.RECONCILED(reason=reason)
    reason_code, reason_params = stored_message(reason)
    values = dict(
        account_id=integration.account_id,
        integration_id=integration.id,
        talk_id=event.talk_id,
        chat_id=item.get("chat_id") or None,
        origin=origin,
        channel=channel_for_origin(origin),
        contact_name=contact_name(contact),
        phone=contact_phone(contact),
        phone_raw=contact_phone_raw(contact),
        email=contact_email(contact),
        created_at=created_at,
        closed_at=_ts(item.get("updated_at")) or event.received_at,
        session_id=vs.id if vs else None,
        visitor_id=vs.visitor_id if vs else None,
        site_id=result.site_id,
        campaign_id=result.campaign_id,
        source_id=result.source_id,
        utm_source=vs.utm_source if vs else None,
        utm_medium=vs.utm_medium if vs else None,
        utm_campaign=vs.utm_campaign if vs else None,
        utm_term=vs.utm_term if vs else None,
        utm_content=vs.utm_content if vs else None,
        referrer=vs.referrer if vs else None,
        entrance_page=vs.entrance_page if vs else None,
        attribution=result.kind,
        attribution_reason_code=reason_code,
        attribution_reason_params=reason_params,
        amo_lead_id=lead_id,
        amo_contact_id=contact_id,
        recorded_at=utcnow(),
    )
    new_id = insert_ignoring_conflicts(session, ChatRequest.__table__, values, ["integration_id", "talk_id"])
    if new_id is None:  # another worker recorded this talk first
        new_id = session.scalar(
            sa.select(ChatRequest.id).where(ChatRequest.integration_id == integration.id, ChatRequest.talk_id == event.talk_id)
        )
    mark_repeat_request(session, new_id)  # new or repeat of the contact's series, in this transaction
    return new_id


# Where the session field's value was found when the chosen entity's field was empty.
_TAKEN_FROM_OTHER = {"leads": attribution_reasons.FIELD_FROM_CONTACT, "contacts": attribution_reasons.FIELD_FROM_LEAD}


def session_field_value(integration: Integration, entity: dict | None, entity_type: str) -> str | None:
    """The session field of a lead or contact, cleaned ("null", "%31%32", padding); None when empty.
    The chosen entity is read by the field's id; the other one (whose fields have their own ids)
    by the field's id, then by its name."""
    value = custom_field_value(entity, integration.session_field_id)
    if clean_session_value(value) is None and entity_type != integration.session_field_entity:
        value = custom_field_value_by_name(entity, integration.session_field_name)
    return clean_session_value(value)


def read_session_field(integration: Integration, lead: dict | None, contact: dict | None) -> tuple[str | None, Message | None]:
    """(value, note): the chosen entity's session field first, then the other entity's; the note
    says so when the value came from the other one («поле сессии пусто в сделке, взято из контакта»)."""
    chosen = integration.session_field_entity
    other = "contacts" if chosen == "leads" else "leads"
    entities = {"leads": lead, "contacts": contact}
    value = session_field_value(integration, entities[chosen], chosen)
    if value is not None or not integration.session_field_id:
        return value, None
    value = session_field_value(integration, entities[other], other)
    if value is None:
        return None, None
    return value, _TAKEN_FROM_OTHER[chosen]()


def _lead_id(item: dict) -> int | None:
    return _int(item.get("entity_id")) if item.get("entity_type") == "lead" else None


def _finish(events, status: str, reason: Message | None, request_id: int | None = None) -> None:
    now = utcnow()
    for event in events:
        event.status = status
        event.status_message = reason
        event.processed_at = now
        event.claim_token = None
        event.next_attempt_at = None
        if request_id is not None:
            event.request_id = request_id
        if status == EventStatus.DONE:
            event.error = None


def release_for_retry(session: Session, event_ids: list[int], error: str) -> float:
    """Give claimed events back with a backoff; those out of attempts are marked failed."""
    events = list(session.scalars(sa.select(WebhookEvent).where(WebhookEvent.id.in_(event_ids))))
    now = utcnow()
    delay = retry_delay_seconds(max((e.attempts for e in events), default=1))
    for event in events:
        if event.status != EventStatus.PROCESSING:
            continue
        event.error = error[:2000]
        event.claim_token = None
        if event.attempts >= MAX_ATTEMPTS:
            event.status = EventStatus.FAILED
            event.status_message = event_reasons.FAILED_AFTER_ATTEMPTS(attempts=event.attempts)
            event.processed_at = now
        else:
            event.status = EventStatus.RECEIVED
            event.next_attempt_at = now + timedelta(seconds=delay)
    return delay


def _reason_values(reason: Message | None) -> dict:
    """The status reason columns for a bulk UPDATE."""
    code, params = stored_message(reason)
    return {"status_reason_code": code, "status_reason_params": params}


def park_events(session: Session, integration_id: int, error: str) -> int:
    """The integration lost its authorisation: keep its events (not lost, not retried to death)."""
    result = session.execute(
        sa.update(WebhookEvent)
        .where(WebhookEvent.integration_id == integration_id, WebhookEvent.status.in_(event_status.PENDING))
        .values(status=EventStatus.PARKED, **_reason_values(event_reasons.NEEDS_REAUTH()), error=error[:2000], claim_token=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def unpark_events(session: Session, integration_id: int) -> list[int]:
    """After a reconnect: parked events go back to the queue; returns their ids to enqueue."""
    ids = list(
        session.scalars(
            sa.select(WebhookEvent.id).where(WebhookEvent.integration_id == integration_id, WebhookEvent.status == EventStatus.PARKED)
        )
    )
    if ids:
        session.execute(
            sa.update(WebhookEvent)
            .where(WebhookEvent.id.in_(ids))
            .values(status=EventStatus.RECEIVED, **_reason_values(None), next_attempt_at=None, attempts=0)
            .execution_options(synchronize_session=False)
        )
    return ids


def sweep_stuck(session: Session, now: datetime | None = None,
                received_after: float = STUCK_RECEIVED_SECONDS, processing_after: float = STUCK_PROCESSING_SECONDS) -> list[int]:
    """Events a lost message or a killed worker left behind; returns ids to enqueue again."""
    now = now or utcnow()
    stale = sa.and_(WebhookEvent.status == EventStatus.PROCESSING,
                    WebhookEvent.claimed_at < now - timedelta(seconds=processing_after))
    # A claim that keeps dying with its worker (a crash no error handler sees) stops at MAX_ATTEMPTS
    # like any other retry: the database owns the count, whoever re-sends.
    session.execute(
        sa.update(WebhookEvent).where(stale, WebhookEvent.attempts >= MAX_ATTEMPTS)
        .values(status=EventStatus.FAILED, **_reason_values(event_reasons.WORKER_INTERRUPTED(attempts=MAX_ATTEMPTS)),
                claim_token=None, processed_at=now)
        .execution_options(synchronize_session=False)
    )
    stale_claims = session.execute(
        sa.update(WebhookEvent)
        .where(WebhookEvent.status == EventStatus.PROCESSING, WebhookEvent.claimed_at < now - timedelta(seconds=processing_after))
        .values(status=EventStatus.RECEIVED, claim_token=None, error="рабочий процесс прервался; повтор")
        .execution_options(synchronize_session=False)
    )
    if stale_claims.rowcount:
        log.warning("sweeper released %s events from interrupted workers", stale_claims.rowcount)
    cutoff = now - timedelta(seconds=received_after)
    ids = list(
        session.scalars(
            sa.select(WebhookEvent.id)
            .where(
                WebhookEvent.status == EventStatus.RECEIVED,
                WebhookEvent.received_at < cutoff,
                sa.or_(WebhookEvent.next_attempt_at.is_(None), WebhookEvent.next_attempt_at < cutoff),
            )
            .order_by(WebhookEvent.id)
            .limit(5000)
        )
    )
    if ids:
        # Push the next sweep of these rows a minute away so a slow queue is not flooded with copies.
        session.execute(
            sa.update(WebhookEvent).where(WebhookEvent.id.in_(ids)).values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids


def _record_integration_error(session: Session, integration_id: int, error: str) -> None:
    session.execute(
        sa.update(Integration).where(Integration.id == integration_id).values(last_error=error[:2000], last_error_at=utcnow())
    )


def _int(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _ts(value) -> datetime | None:
    number = _int(value)
    return datetime.fromtimestamp(number, tz=timezone.utc) if number else None
