"""Backfills: reading amoCRM's event log over a period for closed talks no webhook reported."""
from __future__ import annotations

from flask import g, jsonify

from core.inbox import reconciliation
from core.integrations import settings as integrations
from core.reporting import report as reports
from web.api import models as m
from web.api.blueprint import bp, requested_by
from web.api.contract import ApiError, accepted, contract, ok, read_body
from web.extensions import db
from workers import outbox

TAGS = ("integrations",)


@bp.post("/integrations/<int:integration_id>/backfill")
@contract("Backfill: find closed chats no webhook reported over a period",
          accepted(m.Backfill, "started; follow progress_url"), tags=TAGS, body=m.BackfillRequest, errors=(404, 409, 422),
          description="Reads amoCRM's event log (`talk_closed`) over the period in the background; each closed "
                      "talk without a request becomes one, through the same path as a webhook (one request per "
                      "talk). 409 `not_connected` when the integration has no amoCRM connection, "
                      "`not_active` when it is switched off.")
def start_backfill(integration_id: int):
    integrations.get_integration(db.session, g.account_id, integration_id)  # 404 before anything else
    data = read_body()
    zone = reports.get_zone(data.tz)
    date_from = reports.parse_moment(data.date_from, "date_from", zone)
    date_till = reports.parse_moment(data.date_till, "date_till", zone, end_of_day=True)
    try:
        run = reconciliation.start_backfill(db.session, g.account_id, integration_id, date_from, date_till,
                                            requested_by=requested_by())
    except reconciliation.NotConnected as exc:
        raise ApiError(409, exc.code, str(exc))
    db.session.commit()
    outbox.enqueue_backfill(run.id)
    return jsonify(reconciliation.backfill_to_dict(run)), 202


@bp.get("/backfills/<int:backfill_id>")
@contract("Progress of a backfill", ok(m.Backfill), tags=TAGS, errors=(404,))
def backfill_progress(backfill_id: int):
    return jsonify(reconciliation.backfill_progress(db.session, g.account_id, backfill_id))
