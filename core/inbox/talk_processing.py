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

from core.amocrm.client import AmoCrmClient
from core.amocrm.contact_data import (
    contact_email,
    contact_name,
    contact_phone,
    contact_phone_raw,
    custom_field_value,
    custom_field_value_by_name,
)
from core.amocrm.errors import AmoApiError, AmoBlocked, AmoCrmError, AmoTransient, ReauthRequired
from core.amocrm.messengers import channel_for_origin, excluded_channel_reason
from core.inbox import attribution_reasons, drain_marker, event_reasons, event_status
from core.inbox.attribution import attribute, clean_session_value, parse_session_id
from core.inbox.click_attribution import attribute_by_click, channels_with_clicks
from core.inbox.event_status import EventStatus
from core.inbox.repeat_requests import contact_key
from core.inbox.repeat_requests import mark_requests as mark_repeat_requests
from core.inbox.webhooks import RECONCILIATION_SOURCE, SOURCE_KEY
from core.models import Campaign, ChatRequest, Integration, Site, Source, VisitorSession, WebhookEvent, stored_message
from core.platform.db import insert_many_ignoring_conflicts, utcnow
from core.platform.messages import Message
from core.platform.ratelimit import RateLimitTimeout
from core.platform.services import Services

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
        if event is None:
            return ProcessOutcome("nothing")
        # Before anything due is read: an event committed from now on sends a message of its own.
        drain_marker.taken(services.redis, event.integration_id)
        if event.status != EventStatus.RECEIVED:
            # An earlier drain took this event; the message still stands for the events whose
            # webhooks found it waiting and sent none (core.inbox.drain_marker).
            due = session.scalar(due_events(event.integration_id, utcnow(), 1))
            if due is None:
                return ProcessOutcome("nothing")
            event, event_id = session.get(WebhookEvent, due), due
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
    slots = _slots_per_batch(services, integration_id)
    first = True
    while time.monotonic() - started < BATCH_LOOP_SECONDS:
        if slots is not None:
            if not first:  # the first time round, the triggering event is due
                with services.session_factory() as session:
                    if session.scalar(due_events(integration_id, utcnow(), 1)) is None:
                        break
            first = False
            # Wait for amoCRM's rate limit BEFORE claiming: what arrives meanwhile joins this batch
            # rather than waiting a whole batch more (at 5 closes/s that was most of the latency).
            services.limiter.wait_until_free(slots[0], slots[1], deadline_s=SLOT_WAIT_SECONDS)
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


SLOT_WAIT_SECONDS = 5.0


SLOTS_CACHE_SECONDS = 60.0
_slots_cache: dict[int, tuple[float, tuple[str, int] | None]] = {}


def _slots_per_batch(services: Services, integration_id: int) -> tuple[str, int] | None:
    """(the amoCRM rate-limit key, the calls a batch makes: contacts, and leads when the session field
    is on the lead), or None when that cannot be told (no such integration, a limiter without a wait).
    Kept a minute per process: it only sizes the wait (the client's own `acquire` is the limit), and
    reading it for every drain cost the worker two queries."""
    if not hasattr(services.limiter, "wait_until_free"):
        return None
    cached = _slots_cache.get(integration_id)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    try:
        client = AmoCrmClient(services, integration_id)
        with services.session_factory() as session:
            entity = session.scalar(sa.select(Integration.session_field_entity).where(Integration.id == integration_id))
        value = (client.limiter_key, 2 if entity == "leads" else 1)
    except Exception:  # not connected, gone: process_claimed says what to do with the events
        value = None
    _slots_cache[integration_id] = (time.monotonic() + SLOTS_CACHE_SECONDS, value)
    return value


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
        _held = preload_for_batch(session, integration, pending, contacts, leads, mappings)  # alive until the commit
        request_ids, failures = record_batch(session, integration, pending, contacts, leads, mappings)
        for event in pending:
            if event.id in failures:
                _finish([event], EventStatus.FAILED, None)
                event.error = failures[event.id][:2000]
            else:
                _finish([event], EventStatus.DONE, None, request_ids[event.talk_id])
        recorded = len(pending) - len(failures)
        if integration.last_error and recorded:
            integration.last_error = None
        session.commit()  # the batch's requests, their repeat flags, click claims and events: one transaction
        return recorded


def record_batch(session: Session, integration: Integration, events: list[WebhookEvent], contacts: dict, leads: dict,
                 mappings: dict) -> tuple[dict[int, int], dict[int, str]]:
    """Record the batch's requests in the open transaction: ({talk_id: request id}, {event id: error}).
    First all together (one multi-row insert, the repeat flags marked once) inside a savepoint; when
    that fails, talk by talk, each in its own savepoint, so one bad item never holds back the others.
    The caller finishes the events and commits."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite: a SAVEPOINT opens a deferred transaction, and a transaction that has read cannot take
        # the write lock once another connection wrote ("database is locked", no busy wait). A first
        # (no-op) write takes it, waiting as long as busy_timeout allows, before anything is read.
        session.execute(sa.update(WebhookEvent).where(WebhookEvent.id == events[0].id)
                        .values(claim_token=WebhookEvent.claim_token).execution_options(synchronize_session=False))
    try:
        with session.begin_nested():
            return record_requests(session, integration, events, contacts, leads, mappings), {}
    except Exception as exc:
        _raise_if_connection_lost(exc)
        log.warning("integration %s: %s talks could not be recorded together (%s); one by one",
                    integration.id, len(events), type(exc).__name__)
    request_ids: dict[int, int] = {}
    failures: dict[int, str] = {}
    for event in events:
        try:
            with session.begin_nested():
                request_ids.update(record_requests(session, integration, [event], contacts, leads, mappings))
        except Exception as exc:  # one bad item must not hold back the batch
            _raise_if_connection_lost(exc)
            log.exception("event %s could not be recorded", event.id)
            failures[event.id] = f"{type(exc).__name__}: {exc}"
    return request_ids, failures


def _raise_if_connection_lost(exc: Exception) -> None:
    """A lost database is no bad item: the whole batch stays claimed and the sweeper gives it back."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        raise exc


def preload_for_batch(session: Session, integration: Integration, events: list[WebhookEvent], contacts: dict,
                      leads: dict, mappings: dict) -> list:
    """Load what attributing the batch reads by primary key — the visitor sessions named in the
    session fields, then their and the mappings' campaigns, sources and sites — in one query per kind,
    into the session's identity map (where `attribute`'s `session.get` finds them without a query).
    Returns the objects: the identity map holds them only while someone does."""
    held: list = []
    session_ids = set()
    for event in events:
        contact = contacts.get(_int(event.item.get("contact_id")))
        lead_id = _lead_id(event.item)
        value, _note = read_session_field(integration, leads.get(lead_id) if lead_id else None, contact)
        session_id = parse_session_id(value)
        if session_id is not None:
            session_ids.add(session_id)
    if session_ids:
        held += session.scalars(sa.select(VisitorSession).where(VisitorSession.id.in_(sorted(session_ids)))).all()
    wanted = {Campaign: set(), Source: set(), Site: set()}
    for row in [*held, *mappings.values()]:
        wanted[Campaign].add(row.campaign_id)
        wanted[Source].add(row.source_id)
        wanted[Site].add(row.site_id)
    wanted[Campaign].add(integration.default_campaign_id)
    wanted[Source].add(integration.default_source_id)
    wanted[Site].add(integration.default_site_id)
    for model, ids in wanted.items():
        ids = sorted(i for i in ids if i)
        if ids:
            held += session.scalars(sa.select(model).where(model.id.in_(ids))).all()
    return held


def record_request(session: Session, integration: Integration, event: WebhookEvent, contacts: dict, leads: dict, mappings: dict) -> int:
    """One talk's request (the batch of one); returns its id."""
    return record_requests(session, integration, [event], contacts, leads, mappings)[event.talk_id]


def record_requests(session: Session, integration: Integration, events: list[WebhookEvent], contacts: dict,
                    leads: dict, mappings: dict) -> dict[int, int]:
    """Attribute each talk and insert all the requests in one `INSERT … ON CONFLICT DO NOTHING
    RETURNING` (a talk another worker recorded first keeps that request), then mark the repeat
    requests of every contact involved, in the caller's transaction. Returns {talk_id: request id}."""
    rows = {}
    clicked = channels_with_clicks(session, integration, [(_origin(e.item), e.talk_id, _created_at(e)) for e in events])
    for event in events:
        if event.talk_id not in rows:  # the claim holds one event per talk; the first wins if not
            rows[event.talk_id] = request_values(session, integration, event, contacts, leads, mappings,
                                                 clicked_channels=clicked)
    inserted = insert_many_ignoring_conflicts(session, ChatRequest.__table__, list(rows.values()),
                                              ["integration_id", "talk_id"], returning=("talk_id", "id"))
    ids = {talk_id: request_id for talk_id, request_id in inserted}
    ours = {request_id: (integration.account_id, rows[talk_id]["contact_key"], rows[talk_id]["created_at"])
            for talk_id, request_id in ids.items()}
    taken = [talk_id for talk_id in rows if talk_id not in ids]
    if taken:  # another worker recorded these talks first
        ids.update(session.execute(
            sa.select(ChatRequest.talk_id, ChatRequest.id).where(ChatRequest.integration_id == integration.id,
                                                                 ChatRequest.talk_id.in_(taken))).all())
    # New or repeat of the contact's series, in this transaction (our rows' keys need no reading back).
    mark_repeat_requests(session, list(ids.values()), ours)
    return ids


def _origin(item: dict) -> str | None:
    return (item.get("origin") or "").strip() or None


def _created_at(event: WebhookEvent) -> datetime:
    return _ts(event.item.get("created_at")) or event.received_at


def request_values(session: Session, integration: Integration, event: WebhookEvent, contacts: dict, leads: dict,
                   mappings: dict, *, clicked_channels: frozenset[str] | None = None) -> dict:
    """The request row of one talk: contact data, attribution (the field's session, a click, the
    mapping or the default; a click claim is flushed in the open transaction). `clicked_channels`:
    the batch's channels with clicks to look at (`channels_with_clicks`)."""
    item = event.item
    contact_id = _int(item.get("contact_id"))
    lead_id = _lead_id(item)
    contact = contacts.get(contact_id) if contact_id else None
    field_value, field_note = read_session_field(integration, leads.get(lead_id) if lead_id else None, contact)
    origin = _origin(item)
    result = attribute(session, integration, session_field_value=field_value, origin=origin, mappings=mappings,
                       field_note=field_note)
    created_at = _created_at(event)
    result = attribute_by_click(session, integration, result, origin=origin, talk_id=event.talk_id,
                                talk_created_at=created_at, clicked_channels=clicked_channels)
    vs = result.session
    reason = result.reason
    if item.get(SOURCE_KEY) == RECONCILIATION_SOURCE:  # found by core.inbox.reconciliation, not by a webhook
        reason = attribution_reasons.RECONCILED(reason=reason)
    reason_code, reason_params = stored_message(reason)
    phone = contact_phone(contact)
    email = contact_email(contact)
    return dict(
        account_id=integration.account_id,
        integration_id=integration.id,
        talk_id=event.talk_id,
        chat_id=item.get("chat_id") or None,
        origin=origin,
        channel=channel_for_origin(origin),
        contact_name=contact_name(contact),
        phone=phone,
        phone_raw=contact_phone_raw(contact),
        email=email,
        contact_key=contact_key(integration.id, contact_id, phone, email),
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
        .values(status=EventStatus.RECEIVED, claim_token=None, **_reason_values(event_reasons.WORKER_RELEASED()))
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
