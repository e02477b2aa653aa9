"""The dashboard: requests by day, channel, campaign and source; attribution; integration health; warnings."""
from __future__ import annotations

from flask import g, jsonify

from core.inbox import worker_health
from core.platform.errors import ValidationFailed
from core.reporting import dashboard
from web.api import models as m
from web.api.blueprint import bp, services
from web.api.contract import ApiError, contract, ok, query
from web.extensions import db
from web.messages import catalogues


@bp.get("/dashboard")
@contract("Dashboard: requests by day, channel, campaign and source; attribution; integration health; warnings",
          ok(m.Dashboard), tags=("dashboard",), query=m.DashboardQuery)
def get_dashboard():
    params = query()
    try:
        data = dashboard.build_dashboard(db.session, g.account_id, params.date_from, params.date_till, tz=params.tz,
                                         integration_id=params.integration_id, lang=params.lang, catalogues=catalogues(),
                                         processing=worker_health.processing_state(db.session, services().redis, g.account_id))
    except ValidationFailed as exc:
        raise ApiError(400, "bad_parameter", exc.message, field=exc.field)
    return jsonify(data)
