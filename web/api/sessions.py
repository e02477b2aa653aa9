"""Visitor sessions recorded through the API (the tracking script records them through web/tracking.py)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import g, jsonify

from core.access.ownership import get_owned
from core.models import VisitorSession
from core.platform.errors import ValidationFailed
from core.tracking import sessions as visitor_sessions
from web.api import models as m
from web.api.blueprint import bp, created_json
from web.api.contract import ApiError, contract, created, ok, read_body
from web.extensions import db

TAGS = ("sessions",)


@bp.post("/sessions")
@contract("Record a visitor session", created(m.VisitorSession), tags=TAGS, body=m.SessionCreate, errors=(422,),
          description="The ad campaign and source are resolved by the rules. A bot's user agent gets 422 `bot`.")
def create_session():
    data = read_body()
    texts = {name: getattr(data, name) for name in m.SESSION_TEXT_FIELDS}
    extra = {"click_ids": data.click_ids} if data.click_ids is not None else {}
    try:
        vs = visitor_sessions.create_session(db.session, g.account_id, data.site_id, started_at=_moment(data.started_at),
                                             **texts, **extra)
    except visitor_sessions.SiteNotFound:
        raise ValidationFailed(f"site {data.site_id} does not exist in this account", "site_id")
    if vs is None:
        raise ApiError(422, "bot", "the user agent is a bot; no session was stored")
    return created_json(visitor_sessions.to_dict(vs))


@bp.get("/sessions/<int:session_id>")
@contract("Read a visitor session", ok(m.VisitorSession), tags=TAGS, errors=(404,))
def get_session(session_id: int):
    return jsonify(visitor_sessions.to_dict(get_owned(db.session, VisitorSession, g.account_id, session_id)))


def _moment(raw: str | None) -> datetime | None:
    """An ISO 8601 date-time; without an offset it is UTC."""
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed("started_at must be an ISO 8601 date-time", "started_at")
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
