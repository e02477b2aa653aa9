"""The Data API blueprint: the token check, the query string read against each operation's contract,
the API's error answers, and the small helpers every resource module shares. (The 503 for a database
that is down is the app's, in web/errors.py.)"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy.exc import DataError, IntegrityError
from werkzeug.exceptions import HTTPException

from core.access.accounts import authenticate_api_token
from core.platform.errors import NotFound, ValidationFailed
from web.api.contract import BIGGEST_NUMBER, ApiError, current_operation, read_query
from web.errors import json_error
from web.extensions import csrf, db

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


def services():
    return current_app.extensions["chatsource.services"]


def listing(rows, total, to_dict):
    return jsonify({"data": [to_dict(r) for r in rows], "total": total})


def created_json(data: dict):
    db.session.commit()
    return jsonify(data), 201


def requested_by() -> str:
    """Who asked, as replay and backfill runs record it."""
    return f"api:{getattr(g, 'api_token_name', 'token')}"[:200]


@bp.url_value_preprocessor
def _ids_in_range(endpoint, values):
    # No id is that big; SQLite could not even compare it (its integers are 64-bit).
    if values and any(isinstance(v, int) and v > BIGGEST_NUMBER for v in values.values()):
        raise ApiError(404, "not_found", "no such object")


@bp.before_request
def authenticate():
    operation = current_operation()
    if operation is not None and operation.public:
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
    if operation is not None:
        # A misspelt filter (`chanel=`) must not silently return everything: the operation's query model
        # names the parameters it takes, and refuses the others.
        g.api_query = read_query(operation)


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
