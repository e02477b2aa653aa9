"""Requests — the Raw data report — as JSON pages and as a streamed CSV."""
from __future__ import annotations

from flask import g, jsonify, request

from core.platform.errors import ValidationFailed
from core.reporting import report as reports
from web.api import models as m
from web.api.blueprint import bp, services
from web.api.contract import ApiError, Reply, contract, ok, query
from web.csv_export import requests_csv_response
from web.extensions import db
from web.messages import translations_for

TAGS = ("requests",)


def report_params():
    """The report's filter, sort and time zone from the query string; 400 naming the parameter."""
    try:
        zone = reports.get_zone(request.args.get("tz") or None)
        flt = reports.RequestFilter.from_params(request.args, zone)
        sort = reports.Sort.parse(request.args.get("sort") or None)
    except ValidationFailed as exc:
        raise ApiError(400, "bad_parameter", exc.message, field=exc.field)
    return flt, sort, zone


@bp.get("/requests")
@contract("Requests (the Raw data report)", ok(m.RequestList), tags=TAGS, query=m.RequestsQuery)
def list_requests():
    params = query()
    flt, sort, _ = report_params()
    if params.cursor and params.offset:
        raise ApiError(400, "bad_parameter", "give either cursor or offset, not both", field="cursor")
    try:
        page = reports.page_requests(db.session, g.account_id, flt, sort, limit=params.limit, offset=params.offset,
                                     cursor=params.cursor)
    except ValidationFailed as exc:
        raise ApiError(400, "bad_parameter", exc.message, field=exc.field)
    translations = translations_for(params.lang)
    return jsonify({"data": [reports.request_to_dict(r, page.refs, translations) for r in page.rows], "total": page.total,
                    "next_cursor": page.next_cursor})


CSV_REPLY = Reply(200, {"type": "string"}, "UTF-8 CSV with a BOM; headers in `lang`; cells that a spreadsheet would run "
                                           "as a formula start with '", media_type="text/csv")


@bp.get("/requests.csv")
@contract("Requests as CSV (streamed)", CSV_REPLY, tags=TAGS, query=m.CsvQuery)
def export_requests_csv():
    params = query()
    flt, sort, zone = report_params()
    return requests_csv_response(services().session_factory, g.account_id, flt, sort=sort, lang=params.lang, zone=zone,
                                 delimiter=params.delimiter)
