"""Data API v1: `Authorization: Bearer <token>`; errors `{"error": {"code", "message"}}`; lists
`{"data": [...], "total": n}`. Every handler is a thin adapter over a core function and sees only the
token's account. `GET /api/v1/openapi.json` (no token needed) describes every endpoint; a test keeps it
in step with the routes and schemathesis checks the answers against it."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from flask import Blueprint, current_app, g, jsonify, request

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from core import (catalog, dashboard, integrations, maintenance, reconciliation, reports, talk_processing, visitor_sessions,
                  worker_health)
from core.accounts import authenticate_api_token
from core.amocrm.errors import AmoCrmError, ReauthRequired
from core.catalog import NotFound, ValidationFailed
from core.models import Campaign, Site, Source, WebhookEvent
from core.oauth_connect import ConnectError, start_connect
from core.webhook_rotation import rotate_webhook
from web.csv_export import requests_csv_response
from web.messages import catalogues, translations_for
from web.errors import json_error
from web.extensions import csrf, db
from web.json_input import JsonTooDeep

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
MAX_LIMIT = 500


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def services():
    return current_app.extensions["chatsource.services"]


PUBLIC_ENDPOINTS = {"api.openapi_json"}  # the OpenAPI document needs no token
BIGGEST_NUMBER = 2**62


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _has_huge_number(value) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) > BIGGEST_NUMBER
    if isinstance(value, float):
        return value != value or abs(value) > BIGGEST_NUMBER  # NaN or beyond any id
    if isinstance(value, dict):
        return any(_has_huge_number(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_huge_number(v) for v in value)
    return False


@bp.url_value_preprocessor
def _ids_in_range(endpoint, values):
    # No id is that big; SQLite could not even compare it (its integers are 64-bit).
    if values and any(isinstance(v, int) and v > BIGGEST_NUMBER for v in values.values()):
        raise ApiError(404, "not_found", "no such object")


@bp.before_request
def authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send the header Authorization: Bearer <token> (create one with `flask --app wsgi api-tokens create NAME`)")
    api_token = authenticate_api_token(db.session, token.strip())
    if api_token is None:
        raise ApiError(401, "unauthorized", "the token is unknown or revoked")
    g.account_id = api_token.account_id
    g.api_token_name = api_token.name
    db.session.commit()
    _check_query_parameters()


def _check_query_parameters() -> None:
    """A misspelt filter (`chanel=`) must not silently return everything: parameters the OpenAPI
    document does not give the operation are refused, naming the ones it takes."""
    from web.api.openapi import query_parameters

    if any(_has_nul(k) or _has_nul(v) for k, v in request.args.items(multi=True)):
        # PostgreSQL cannot store or compare text with NUL; no real value carries one.
        raise ApiError(400, "bad_parameter", "query parameters must not contain the NUL character")
    allowed = query_parameters(request.url_rule.rule, request.method) if request.url_rule is not None else None
    if allowed is None:
        return
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        takes = f"; it takes: {', '.join(sorted(allowed))}" if allowed else "; it takes none"
        raise ApiError(400, "bad_parameter", f"unknown query parameter(s): {', '.join(unknown)}{takes}", field=unknown[0])
    for name, value in request.args.items(multi=True):
        if not value.strip():
            raise ApiError(400, "bad_parameter", f"{name} is empty: give a value or leave the parameter out", field=name)


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    db.session.rollback()
    return json_error(exc.status, exc.code, exc.message, **exc.extra)


@bp.errorhandler(ValidationFailed)
def _validation(exc: ValidationFailed):
    db.session.rollback()
    return json_error(422, "invalid", exc.message, field=exc.field)


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    db.session.rollback()
    return json_error(404, "not_found", str(exc))


@bp.errorhandler(DataError)
def _db_data(exc):
    db.session.rollback()
    return json_error(422, "invalid", "a value is too long or out of range for the database")


@bp.errorhandler(IntegrityError)
def _db_conflict(exc):
    db.session.rollback()
    return json_error(409, "conflict", "the change conflicts with existing data; reload and try again")


@bp.errorhandler(OperationalError)
@bp.errorhandler(DBAPIError)
def _db_down(exc):
    db.session.rollback()
    return json_error(503, "unavailable", "the database is unavailable; try again shortly")


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def _routing_error(exc: HTTPException):
    """A url under /api/v1/ that no route takes (a wrong path, or an id that is not a number) or a
    method it does not allow: JSON like every other API error. Elsewhere Flask's own page stays."""
    if not request.path.startswith(bp.url_prefix + "/"):
        return exc
    if exc.code == 405:
        response = json_error(405, "method_not_allowed", f"{request.method} is not allowed here; see /api/v1/openapi.json")
        response.headers["Allow"] = ", ".join(sorted(getattr(exc, "valid_methods", None) or []))
        return response
    return json_error(404, "not_found", f"no such endpoint or object: {request.path}; see /api/v1/openapi.json")


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    return json_error(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description or exc.name)


def body() -> dict:
    try:
        data = current_app.json.loads(request.get_data()) if request.is_json else None
    except JsonTooDeep as exc:
        raise ApiError(400, "bad_json", str(exc))
    except ValueError:
        data = None
    if data is None:
        raise ApiError(400, "bad_json", "send a JSON object with Content-Type: application/json")
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    if _has_nul(data):
        raise ApiError(400, "bad_json", "strings must not contain the NUL character")
    if _has_huge_number(data):
        raise ApiError(422, "invalid", f"numbers must be within ±{BIGGEST_NUMBER}")
    return data


def paging() -> tuple[int, int]:
    return _int_arg("limit", 100, 1, MAX_LIMIT), _int_arg("offset", 0, 0, 10**9)


_WHOLE_NUMBER = re.compile(r"^-?[0-9]{1,19}$")


def _int_arg(name: str, default: int, lo: int, hi: int) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    if not _WHOLE_NUMBER.match(raw):
        raise ApiError(400, "bad_parameter", f"{name} must be a whole number", field=name)
    value = int(raw)
    if not lo <= value <= hi:
        raise ApiError(400, "bad_parameter", f"{name} must be from {lo} to {hi}", field=name)
    return value


def _date_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be an ISO 8601 date or date-time, e.g. 2026-11-24 or 2026-11-24T10:00:00+03:00")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if len(raw) == 10 and name.endswith("till"):
        value = value.replace(hour=23, minute=59, second=59, microsecond=999999)
    return value


def listing(rows, total, to_dict):
    return jsonify({"data": [to_dict(r) for r in rows], "total": total})


def created(data: dict):
    db.session.commit()
    return jsonify(data), 201


# --- sites, sources, campaigns ---------------------------------------------------------------

@bp.get("/sites")
def list_sites():
    limit, offset = paging()
    return listing(*catalog.list_rows(db.session, Site, g.account_id, limit, offset), catalog.site_to_dict)


@bp.post("/sites")
def create_site():
    data = body()
    return created(catalog.site_to_dict(catalog.create_site(db.session, g.account_id, data.get("name"), data.get("domain"))))


@bp.get("/sources")
def list_sources():
    limit, offset = paging()
    return listing(*catalog.list_rows(db.session, Source, g.account_id, limit, offset), catalog.source_to_dict)


@bp.post("/sources")
def create_source():
    data = body()
    row = catalog.create_source(db.session, g.account_id, data.get("name"), data.get("priority"), data.get("conditions"))
    return created(catalog.source_to_dict(row))


@bp.get("/campaigns")
def list_campaigns():
    limit, offset = paging()
    return listing(*catalog.list_rows(db.session, Campaign, g.account_id, limit, offset), catalog.campaign_to_dict)


@bp.post("/campaigns")
def create_campaign():
    data = body()
    row = catalog.create_campaign(db.session, g.account_id, data.get("name"), data.get("site_id"), data.get("priority"), data.get("conditions"))
    return created(catalog.campaign_to_dict(row))


# --- visitor sessions -------------------------------------------------------------------------

SESSION_FIELDS = ("visitor_id", "entrance_page", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_term",
                  "utm_content", "gclid", "yclid", "fbclid")


@bp.post("/sessions")
def create_session():
    data = body()
    unknown = sorted(set(data) - set(SESSION_FIELDS) - {"site_id", "started_at", "click_ids"})
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", unknown[0])
    kwargs = {}
    for name in SESSION_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise ValidationFailed(f"{name} must be a string", name)
        kwargs[name] = value
    if data.get("click_ids") is not None:
        if not isinstance(data["click_ids"], dict) or not all(isinstance(v, str) for v in data["click_ids"].values()):
            raise ValidationFailed("click_ids must be an object of strings", "click_ids")
        kwargs["click_ids"] = data["click_ids"]
    started_at = data.get("started_at")
    if started_at is not None:
        try:
            started_at = datetime.fromisoformat(str(started_at).replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed("started_at must be an ISO 8601 date-time", "started_at")
        if started_at.tzinfo is None:
            started_at = started_at.replace(tzinfo=timezone.utc)
    site_id = data.get("site_id")
    if isinstance(site_id, bool) or not isinstance(site_id, int):
        raise ValidationFailed("site_id is required (a number)", "site_id")
    try:
        vs = visitor_sessions.create_session(db.session, g.account_id, site_id, started_at=started_at, **kwargs)
    except visitor_sessions.SiteNotFound:
        raise ValidationFailed(f"site {site_id} does not exist in this account", "site_id")
    if vs is None:
        raise ApiError(422, "bot", "the user agent is a bot; no session was stored")
    return created(visitor_sessions.to_dict(vs))


@bp.get("/sessions/<int:session_id>")
def get_session(session_id: int):
    from core.models import VisitorSession

    return jsonify(visitor_sessions.to_dict(catalog.get_owned(db.session, VisitorSession, g.account_id, session_id)))


# --- integrations -----------------------------------------------------------------------------

def _integration_dict(integration):
    data = integrations.to_dict(services(), integration)
    data["warnings"] = [w.to_dict(catalogues()) for w in dashboard.integration_warnings(
        db.session, integration.account_id, integration.id,
        processing=worker_health.processing_state(db.session, services().redis, integration.account_id))]
    return data


@bp.get("/integrations")
def list_integrations():
    rows = integrations.list_integrations(db.session, g.account_id)
    return listing(rows, len(rows), _integration_dict)


@bp.post("/integrations")
def create_integration():
    integration = integrations.create_integration(db.session, services(), g.account_id, body())
    return created(_integration_dict(integration))


@bp.get("/integrations/<int:integration_id>")
def get_integration(integration_id: int):
    return jsonify(_integration_dict(integrations.get_integration(db.session, g.account_id, integration_id)))


@bp.patch("/integrations/<int:integration_id>")
def patch_integration(integration_id: int):
    integration = integrations.get_integration(db.session, g.account_id, integration_id)
    try:
        integrations.update_integration(db.session, services(), integration, body())
    except integrations.ActivationBlocked as exc:
        db.session.rollback()
        return json_error(422, "cannot_activate", exc.message, field="is_active", missing=exc.missing)
    db.session.commit()
    return jsonify(_integration_dict(integration))


@bp.post("/integrations/<int:integration_id>/connect")
def connect_integration(integration_id: int):
    integration = integrations.get_integration(db.session, g.account_id, integration_id)
    data = body() if request.get_data() else {}  # the body is optional; when sent it must be a JSON object
    unknown = sorted(set(data) - {"mode"})
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", unknown[0])
    mode = data.get("mode", "popup")
    if mode not in ("popup", "post_message"):
        raise ValidationFailed("mode must be popup or post_message", "mode")
    try:
        url = start_connect(db.session, services(), integration, mode=mode)
    except ConnectError as exc:
        raise ApiError(422, exc.code, exc.message)
    db.session.commit()
    return jsonify({"authorize_url": url})


@bp.post("/integrations/<int:integration_id>/webhook/rotate")
def rotate_integration_webhook(integration_id: int):
    integration = integrations.get_integration(db.session, g.account_id, integration_id)
    return jsonify(rotate_webhook(services(), integration, db.session).to_dict())


@bp.get("/integrations/<int:integration_id>/custom-fields")
def custom_fields(integration_id: int):
    integration = integrations.get_integration(db.session, g.account_id, integration_id)
    if integration.status == "new":
        raise ApiError(409, "not_connected", "connect the integration to amoCRM first")
    try:
        fields = integrations.custom_fields(services(), integration)
    except ReauthRequired as exc:
        raise ApiError(409, "needs_reauth", f"reconnect the integration: {exc}")
    except AmoCrmError as exc:
        raise ApiError(502, "amocrm_error", f"amoCRM answered with an error: {exc}")
    return jsonify({"data": fields, "total": len(fields)})


# --- requests (the Raw data report), events, replay, dashboard -----------------------------------

def _report_params():
    """The report's filter, sort and time zone from the query string; 400 naming the parameter."""
    try:
        zone = reports.get_zone(request.args.get("tz") or None)
        flt = reports.RequestFilter.from_params(request.args, zone)
        sort = reports.Sort.parse(request.args.get("sort") or None)
    except ValidationFailed as exc:
        raise ApiError(400, "bad_parameter", exc.message, field=exc.field)
    return flt, sort, zone


def _lang() -> str:
    """The language of the texts in an answer (reasons, labels): `lang`, Russian by default."""
    lang = request.args.get("lang") or "ru"
    if lang not in reports.LANGS:
        raise ApiError(400, "bad_parameter", "lang must be ru or en", field="lang")
    return lang


@bp.get("/requests")
def list_requests():
    limit, offset = paging()
    flt, sort, _ = _report_params()
    cursor = request.args.get("cursor") or None
    if cursor and offset:
        raise ApiError(400, "bad_parameter", "give either cursor or offset, not both", field="cursor")
    try:
        page = reports.page_requests(db.session, g.account_id, flt, sort, limit=limit, offset=offset, cursor=cursor)
    except ValidationFailed as exc:
        raise ApiError(400, "bad_parameter", exc.message, field=exc.field)
    translations = translations_for(_lang())
    return jsonify({"data": [reports.request_to_dict(r, page.refs, translations) for r in page.rows], "total": page.total,
                    "next_cursor": page.next_cursor})


@bp.get("/requests.csv")
def export_requests_csv():
    flt, sort, zone = _report_params()
    lang = _lang()
    delimiter = request.args.get("delimiter") or "comma"
    if delimiter not in ("comma", "semicolon", "tab"):
        raise ApiError(400, "bad_parameter", "delimiter must be comma, semicolon or tab", field="delimiter")
    account_id, session_factory = g.account_id, services().session_factory

    return requests_csv_response(session_factory, account_id, flt, sort=sort, lang=lang, zone=zone,
                                 delimiter=delimiter)


@bp.get("/events")
def list_events():
    limit, offset = paging()
    status = request.args.get("status") or None
    if status and status not in reports.EVENT_STATUSES:
        raise ApiError(400, "bad_parameter", f"status must be one of: {', '.join(reports.EVENT_STATUSES)}")
    rows, total = reports.list_events(db.session, g.account_id, status=status,
                                      integration_id=_int_arg("integration_id", None, 1, 2**62),
                                      replay_run_id=_int_arg("replay_id", None, 1, 2**62), limit=limit, offset=offset)
    translations = translations_for(_lang())
    return listing(rows, total, lambda row: reports.event_to_dict(row, translations))


@bp.post("/events/<int:event_id>/replay")
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
    return jsonify(reports.event_to_dict(event, translations_for(_lang()))), 202


REPLAY_FIELDS = {"integration_id", "date_from", "date_till", "statuses", "tz"}


@bp.post("/events/replay")
def replay_events_by_filter():
    data = body()
    unknown = sorted(set(data) - REPLAY_FIELDS)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", unknown[0])
    integration_id = data.get("integration_id")
    if integration_id is not None and (isinstance(integration_id, bool) or not isinstance(integration_id, int)):
        raise ValidationFailed("integration_id must be a number or null", "integration_id")
    if data.get("tz") is not None and not isinstance(data["tz"], str):
        raise ValidationFailed("tz must be an IANA time zone name such as Europe/Moscow", "tz")
    zone = reports.get_zone(data.get("tz"))
    date_from = reports.parse_moment(data.get("date_from"), "date_from", zone)
    date_till = reports.parse_moment(data.get("date_till"), "date_till", zone, end_of_day=True)
    result = maintenance.replay_by_filter(
        db.session, g.account_id, integration_id, date_from, date_till, data.get("statuses"),
        requested_by=f"api:{getattr(g, 'api_token_name', 'token')}"[:200],
    )
    db.session.commit()
    from workers.actors import enqueue_talk_events

    enqueue_talk_events(result.to_enqueue)
    answer = result.to_dict()
    answer["progress_url"] = f"/api/v1/replays/{result.run_id}" if result.run_id else None
    return jsonify(answer), 202


@bp.get("/replays/<int:replay_id>")
def replay_progress(replay_id: int):
    from core.models import ReplayRun

    catalog.get_owned(db.session, ReplayRun, g.account_id, replay_id)
    return jsonify(maintenance.replay_progress(db.session, g.account_id, replay_id))


BACKFILL_FIELDS = {"date_from", "date_till", "tz"}


@bp.post("/integrations/<int:integration_id>/backfill")
def start_backfill(integration_id: int):
    """Read amoCRM's event log over a period for closed talks no webhook reported (in the background)."""
    integrations.get_integration(db.session, g.account_id, integration_id)  # 404 before anything else
    data = body()
    unknown = sorted(set(data) - BACKFILL_FIELDS)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", unknown[0])
    if data.get("tz") is not None and not isinstance(data["tz"], str):
        raise ValidationFailed("tz must be an IANA time zone name such as Europe/Moscow", "tz")
    zone = reports.get_zone(data.get("tz"))
    date_from = reports.parse_moment(data.get("date_from"), "date_from", zone)
    date_till = reports.parse_moment(data.get("date_till"), "date_till", zone, end_of_day=True)
    try:
        run = reconciliation.start_backfill(db.session, g.account_id, integration_id, date_from, date_till,
                                            requested_by=f"api:{getattr(g, 'api_token_name', 'token')}"[:200])
    except reconciliation.NotConnected as exc:
        raise ApiError(409, exc.code, str(exc))
    db.session.commit()
    from workers.actors import enqueue_backfill

    enqueue_backfill(run.id)
    return jsonify(reconciliation.backfill_to_dict(run)), 202


@bp.get("/backfills/<int:backfill_id>")
def backfill_progress(backfill_id: int):
    return jsonify(reconciliation.backfill_progress(db.session, g.account_id, backfill_id))


@bp.get("/dashboard")
def get_dashboard():
    lang = _lang()
    integration_id = _int_arg("integration_id", None, 1, 2**62)
    try:
        data = dashboard.build_dashboard(db.session, g.account_id, request.args.get("date_from") or None,
                                         request.args.get("date_till") or None, tz=request.args.get("tz") or None,
                                         integration_id=integration_id, lang=lang, catalogues=catalogues(),
                                         processing=worker_health.processing_state(db.session, services().redis, g.account_id))
    except ValidationFailed as exc:
        raise ApiError(400, "bad_parameter", exc.message, field=exc.field)
    return jsonify(data)


@bp.get("/openapi.json")
def openapi_json():
    from web.api.openapi import openapi_document

    return jsonify(openapi_document())
