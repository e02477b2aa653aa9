"""`GET /healthz`: 200 with the database and broker state; 503 when the database is unreachable, or
`{"status": "degraded", "reasons": [...]}` when events wait with no worker consuming them."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

from core.inbox import event_status, worker_health
from core.models import WebhookEvent
from web.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/livez")
def livez():
    """Liveness: the process answers (no database or broker call). `/healthz` is the readiness check."""
    return jsonify({"status": "ok"})


@bp.get("/healthz")
def healthz():
    services = current_app.extensions["chatsource.services"]
    body = {"status": "ok", "broker": "redis" if services.redis is not None else "embedded"}
    reasons: list[str] = []
    try:
        body["pending_events"] = db.session.scalar(
            sa.select(sa.func.count()).select_from(WebhookEvent).where(WebhookEvent.status.in_(event_status.PENDING))
        )
        body["db"] = "ok"
        # None while Redis is down: broker_state below says so, and whether a worker runs is unknown.
        state = worker_health.processing_state(db.session, services.redis)
    except Exception as exc:
        db.session.rollback()
        body.update(status="error", db=f"error: {type(exc).__name__}")
        state = None
    if state is not None:
        body["worker"] = "ok" if state.worker_alive else "no heartbeat"
        body["oldest_waiting_seconds"] = state.waiting_seconds
        reasons += state.reasons()
    if services.redis is not None:
        try:
            services.redis.ping()
            body["broker_state"] = "ok"
        except Exception as exc:
            body.update(status="degraded" if body["status"] == "ok" else body["status"], broker_state=f"error: {type(exc).__name__}")
    else:
        worker = current_app.extensions.get("chatsource.embedded_worker")
        body["broker_state"] = "ok" if worker is not None else "no worker in this process"
    if reasons:
        body["status"] = "degraded" if body["status"] == "ok" else body["status"]
        body["reasons"] = reasons
    return jsonify(body), (503 if body["status"] == "error" or reasons else 200)
