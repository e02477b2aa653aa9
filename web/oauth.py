"""`GET /oauth/amocrm/callback`: where amoCRM sends the admin back after the consent screen.

The page it shows ends back on the integration either way: opened in the admin's popup it tells the
settings page (postMessage) and closes; opened in the same window it goes back to the integration
(`return_to`, stored with the OAuth state when the admin pressed «Подключить»). The outcome is also
flashed, so the settings page says what happened.
"""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, flash, render_template, request, url_for
from flask_babel import gettext as _

from core.oauth_connect import ConnectError, complete_connect
from web.admin.messages import connect_error
from web.extensions import csrf
from web.i18n import safe_next

log = logging.getLogger(__name__)
bp = Blueprint("oauth", __name__)
csrf.exempt(bp)


def _integration_url(integration_id: int | None) -> str | None:
    if not integration_id:
        return None
    try:
        return url_for("integrations.setup", integration_id=integration_id)
    except Exception:  # noqa: BLE001 - an app without the admin
        return None


@bp.get("/oauth/amocrm/callback")
def callback():
    services = current_app.extensions["chatsource.services"]
    try:
        result = complete_connect(
            services,
            state=request.args.get("state"),
            code=request.args.get("code"),
            referer=request.args.get("referer"),
            error=request.args.get("error"),
        )
    except ConnectError as exc:
        log.info("amoCRM connect failed: %s (integration %s)", exc.code, exc.integration_id)
        message = connect_error(exc.code, exc.message)
        flash(_("amoCRM was not connected: %(reason)s", reason=message), "error")
        return _private(render_template(
            "oauth_result.html", ok=False, code=exc.code, message=message,
            detail=exc.message, integration_id=exc.integration_id, return_to=_integration_url(exc.integration_id),
        ), 400)
    from workers.actors import enqueue_reconcile, enqueue_talk_events

    if result.events_to_enqueue:
        enqueue_talk_events(result.events_to_enqueue)
    # Chats closed while the connection was broken and no webhook reached us: read amoCRM's event log now.
    enqueue_reconcile(result.integration_id)
    flash(_("amoCRM is connected: %(account)s.", account=result.account_name or "—"), "success")
    for warning in result.warnings:
        flash(warning, "warning")
    return_to = safe_next(result.return_to, "") or _integration_url(result.integration_id)
    return _private(render_template(
        "oauth_result.html", ok=True, code="connected", account_name=result.account_name,
        webhook_registered=result.webhook_registered, warnings=result.warnings,
        integration_id=result.integration_id, return_to=return_to,
    ))


def _private(body, status: int = 200):
    """The callback url carries the one-time code: it must not leak as a Referer or sit in a cache."""
    response = current_app.make_response((body, status))
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
