"""The webhook inbox: its events, replaying one or many, and the progress of a replay run."""
from __future__ import annotations

from flask import g, jsonify

from core.access.ownership import get_owned
from core.inbox import replay
from core.inbox.event_status import EventStatus
from core.models import ReplayRun, WebhookEvent
from core.reporting import events
from core.reporting import report as reports
from web.api import models as m
from web.api.blueprint import bp, listing, requested_by
from web.api.contract import ApiError, accepted, contract, ok, query, read_body
from web.extensions import db
from web.messages import translations_for
from workers import outbox

TAGS = ("events",)


@bp.get("/events")
@contract("The webhook inbox", ok(m.EventList), tags=TAGS, query=m.EventsQuery)
def list_events():
    params = query()
    rows, total = events.list_events(db.session, g.account_id, status=params.status, integration_id=params.integration_id,
                                      replay_run_id=params.replay_id, limit=params.limit, offset=params.offset)
    translations = translations_for(params.lang)
    return listing(rows, total, lambda row: events.event_to_dict(row, translations))


# Why one chosen event was not replayed (core.inbox.replay.replay_by_filter's `skipped`).
_NOT_REPLAYED = {
    "in_progress": ("in_progress", "the event is being processed right now"),
    "needs_reauth": ("needs_reauth", "the integration waits for amoCRM to be reconnected; reconnecting replays its events"),
    "integration_inactive": ("integration_inactive", "the integration is switched off; switch it on, then replay"),
    None: ("not_replayable", "only a finished talk (is_in_work=0) can become a request"),
}


@bp.post("/events/<int:event_id>/replay")
@contract("Replay one event", accepted(m.Event, "queued again"), tags=TAGS, errors=(404, 409), query=m.ReasonsQuery,
          description="The rule of a replay by filter: 409 `in_progress` while a worker holds it, `not_replayable` for a "
                      "talk not finished, `needs_reauth` while the integration waits for reconnection (reconnecting "
                      "replays it), `integration_inactive` while the integration is switched off.")
def replay_event(event_id: int):
    event = get_owned(db.session, WebhookEvent, g.account_id, event_id)
    if event.status == EventStatus.PROCESSING:
        raise ApiError(409, "in_progress", "the event is being processed right now")
    result = replay.replay_by_filter(db.session, g.account_id, event_ids=[event.id])
    if not result.queued:
        db.session.rollback()
        code, message = _NOT_REPLAYED.get(next(iter(result.skipped), None), _NOT_REPLAYED[None])
        raise ApiError(409, code, message)
    db.session.commit()
    outbox.enqueue_talk_events(result.to_enqueue)
    return jsonify(events.event_to_dict(event, translations_for(query().lang))), 202


@bp.post("/events/replay")
@contract("Replay events by filter", accepted(m.ReplayQueued, "queued; follow progress_url"), tags=TAGS,
          body=m.ReplayFilter, errors=(422,),
          description="Idempotent: events already queued are not matched again, and a talk makes one request.")
def replay_events_by_filter():
    data = read_body()
    zone = reports.get_zone(data.tz)
    date_from = reports.parse_moment(data.date_from, "date_from", zone)
    date_till = reports.parse_moment(data.date_till, "date_till", zone, end_of_day=True)
    result = replay.replay_by_filter(db.session, g.account_id, data.integration_id, date_from, date_till,
                                          data.statuses, requested_by=requested_by())
    db.session.commit()
    outbox.enqueue_talk_events(result.to_enqueue)
    answer = result.to_dict()
    answer["progress_url"] = f"/api/v1/replays/{result.run_id}" if result.run_id else None
    return jsonify(answer), 202


@bp.get("/replays/<int:replay_id>")
@contract("Progress of a replay", ok(m.ReplayProgress), tags=TAGS, errors=(404,))
def replay_progress(replay_id: int):
    get_owned(db.session, ReplayRun, g.account_id, replay_id)
    return jsonify(replay.replay_progress(db.session, g.account_id, replay_id))
