"""The webhook inbox: its events, replaying one or many, and the progress of a replay run."""
from __future__ import annotations

from flask import g, jsonify

from core import catalog, maintenance, reports, talk_processing
from core.models import ReplayRun, WebhookEvent
from web.api import models as m
from web.api.blueprint import bp, listing, requested_by
from web.api.contract import ApiError, accepted, contract, ok, query, read_body
from web.extensions import db

TAGS = ("events",)


@bp.get("/events")
@contract("The webhook inbox", ok(m.EventList), tags=TAGS, query=m.EventsQuery)
def list_events():
    params = query()
    rows, total = reports.list_events(db.session, g.account_id, status=params.status, integration_id=params.integration_id,
                                      replay_run_id=params.replay_id, limit=params.limit, offset=params.offset)
    return listing(rows, total, reports.event_to_dict)


@bp.post("/events/<int:event_id>/replay")
@contract("Replay one event", accepted(m.Event, "queued again"), tags=TAGS, errors=(404, 409))
def replay_event(event_id: int):
    event = catalog.get_owned(db.session, WebhookEvent, g.account_id, event_id)
    if event.status == "processing":
        raise ApiError(409, "in_progress", "the event is being processed right now")
    queued = talk_processing.replay_events(db.session, g.account_id, [event.id])
    if not queued:
        raise ApiError(409, "not_replayable", "only a finished talk (is_in_work=0) can become a request")
    db.session.commit()
    from workers.actors import enqueue_talk_events

    enqueue_talk_events(queued)
    return jsonify(reports.event_to_dict(event)), 202


@bp.post("/events/replay")
@contract("Replay events by filter", accepted(m.ReplayQueued, "queued; follow progress_url"), tags=TAGS,
          body=m.ReplayFilter, errors=(422,),
          description="Idempotent: events already queued are not matched again, and a talk makes one request.")
def replay_events_by_filter():
    data = read_body()
    zone = reports.get_zone(data.tz)
    date_from = reports.parse_moment(data.date_from, "date_from", zone)
    date_till = reports.parse_moment(data.date_till, "date_till", zone, end_of_day=True)
    result = maintenance.replay_by_filter(db.session, g.account_id, data.integration_id, date_from, date_till,
                                          data.statuses, requested_by=requested_by())
    db.session.commit()
    from workers.actors import enqueue_talk_events

    enqueue_talk_events(result.to_enqueue)
    answer = result.to_dict()
    answer["progress_url"] = f"/api/v1/replays/{result.run_id}" if result.run_id else None
    return jsonify(answer), 202


@bp.get("/replays/<int:replay_id>")
@contract("Progress of a replay", ok(m.ReplayProgress), tags=TAGS, errors=(404,))
def replay_progress(replay_id: int):
    catalog.get_owned(db.session, ReplayRun, g.account_id, replay_id)
    return jsonify(maintenance.replay_progress(db.session, g.account_id, replay_id))
