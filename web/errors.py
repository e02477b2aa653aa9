"""Error answers shared by the whole app: the JSON error body `{"error": {"code", "message"}}` of the Data
API, the webhook and the tracking endpoints, and the one place that answers 503 when the database is
unreachable (registered on the app, so every blueprint and page gets it)."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from flask_babel import gettext
from sqlalchemy.exc import DBAPIError

from web.extensions import db

log = logging.getLogger(__name__)

# The blueprints that speak JSON, and what the 503 tells their callers. amoCRM retries a delivery that
# did not get a 2xx, so for the webhook a 503 loses nothing (it was not stored, and it will come again).
JSON_BLUEPRINTS = {
    "api": "the database is unavailable; try again shortly",
    "tracking": "the database is unavailable; try again shortly",
    "webhooks": "the database is unavailable; amoCRM will retry",
}
RETRY_AFTER_SECONDS = "30"


def json_error(status: int, code: str, message: str, **extra):
    body = {"error": {"code": code, "message": message, **extra}}
    response = jsonify(body)
    response.status_code = status
    return response


def database_unavailable(exc: DBAPIError):
    """503 for a database that is down or refused the statement (OperationalError is a DBAPIError).
    Blueprints with their own answers for some DBAPIErrors (the API's 409 and 422 for IntegrityError and
    DataError) keep them: Flask asks a blueprint's handlers before the app's."""
    _rollback()
    log.warning("%s: the database is unavailable: %s: %s", request.blueprint or "app", type(exc).__name__,
                _first_line(exc.orig))
    if request.blueprint in JSON_BLUEPRINTS:
        response = json_error(503, "unavailable", JSON_BLUEPRINTS[request.blueprint])
    else:
        response = Response(gettext("The database is unavailable; try again in a minute."), status=503, mimetype="text/plain")
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def _rollback() -> None:
    try:
        db.session.rollback()
    except DBAPIError:  # the connection is gone already; the pool drops it
        log.debug("rollback after a database error failed too")


def _first_line(error) -> str:
    """The driver's reason (e.g. "server closed the connection unexpectedly"), never the statement or
    its parameters, which can carry a visitor's or a contact's data."""
    text = str(error or "").strip()
    return text.splitlines()[0][:200] if text else ""


def install(app: Flask) -> None:
    app.register_error_handler(DBAPIError, database_unavailable)
