"""Data API v1: `Authorization: Bearer <token>`; errors `{"error": {"code", "message"}}`; lists
`{"data": [...], "total": n}`. Every handler is a thin adapter over a core function and sees only the
token's account."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from core import catalog, integrations, reports, talk_processing, visitor_sessions
from core.accounts import authenticate_api_token
from core.amocrm.errors import AmoCrmError, ReauthRequired
from core.catalog import NotFound, ValidationFailed
from core.models import Campaign, Site, Source, WebhookEvent
from core.oauth_connect import ConnectError, start_connect
from web.errors import json_error
from web.extensions import csrf, db

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
MAX_LIMIT = 500


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def services():
    return current_app.extensions["chatsource.services"]


@bp.before_request
def authenticate():
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send the header Authorization: Bearer <token> (create one with `flask --app wsgi api-tokens create NAME`)")
    api_token = authenticate_api_token(db.session, token.strip())
    if api_token is None:
        raise ApiError(401, "unauthorized", "the token is unknown or revoked")
    g.account_id = api_token.account_id
    db.session.commit()


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


@bp.errorhandler(OperationalError)
@bp.errorhandler(DBAPIError)
def _db_down(exc):
    db.session.rollback()
    return json_error(503, "unavailable", "the database is unavailable; try again shortly")


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    return json_error(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description or exc.name)


def body() -> dict:
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "bad_json", "send a JSON object with Content-Type: application/json")
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    return data


def paging() -> tuple[int, int]:
    return _int_arg("limit", 100, 1, MAX_LIMIT), _int_arg("offset", 0, 0, 10**9)


def _int_arg(name: str, default: int, lo: int, hi: int) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be a whole number")
    if not lo <= value <= hi:
        raise ApiError(400, "bad_parameter", f"{name} must be from {lo} to {hi}")
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
    return integrations.to_dict(services(), integration)


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
    mode = (request.get_json(silent=True) or {}).get("mode", "popup")
    try:
        url = start_connect(db.session, services(), integration, mode=mode)
    except ConnectError as exc:
        raise ApiError(422, exc.code, exc.message)
    db.session.commit()
    return jsonify({"authorize_url": url})


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


# --- requests and events ----------------------------------------------------------------------

@bp.get("/requests")
def list_requests():
    limit, offset = paging()
    attribution = request.args.get("attribution") or None
    if attribution and attribution not in ("session", "messenger", "default"):
        raise ApiError(400, "bad_parameter", "attribution must be session, messenger or default")
    rows, total = reports.list_requests(
        db.session, g.account_id, date_from=_date_arg("date_from"), date_till=_date_arg("date_till"),
        integration_id=_int_arg("integration_id", None, 1, 2**62), channel=request.args.get("channel") or None,
        attribution=attribution, limit=limit, offset=offset,
    )
    return listing(rows, total, reports.request_to_dict)


@bp.get("/events")
def list_events():
    limit, offset = paging()
    status = request.args.get("status") or None
    if status and status not in reports.EVENT_STATUSES:
        raise ApiError(400, "bad_parameter", f"status must be one of: {', '.join(reports.EVENT_STATUSES)}")
    rows, total = reports.list_events(db.session, g.account_id, status=status,
                                      integration_id=_int_arg("integration_id", None, 1, 2**62), limit=limit, offset=offset)
    return listing(rows, total, reports.event_to_dict)


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
    return jsonify(reports.event_to_dict(event)), 202
