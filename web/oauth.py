"""`GET /oauth/amocrm/callback`: where amoCRM sends the admin back after the consent screen, and
`/oauth/amocrm/confirm/<token>`: the confirmation of a connect that came back anywhere else.

The result page ends back on the integration either way: opened in the admin's popup it tells the
settings page (postMessage) and closes; opened in the same window it goes back to the integration
(`return_to`, stored with the OAuth state when the admin pressed «Подключить»). The outcome is also
flashed, so the settings page says what happened.

Who may link an amoCRM account to an integration is decided in `core.integrations.connect`: the callback
completes at once only for the admin and browser session that started it; otherwise it parks the
code and sends the browser to the confirmation page (through sign-in first), which only a user of
the integration's own account may confirm. The one-time code never appears in another url: the
confirmation link carries a token of its own, redacted from the logs like the code.
"""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from core.integrations.connect import (
    ConnectError,
    PendingConfirmation,
    confirm_connect,
    confirmation_details,
    receive_callback,
)
from core.platform.messages import N_
from core.platform.time_zones import account_time_zone
from core.reporting.report import get_zone
from web.admin.messages import CONNECT_ERRORS, connect_error, translate
from web.extensions import csrf, db
from web.i18n import safe_next
from workers import outbox

log = logging.getLogger(__name__)
bp = Blueprint("oauth", __name__)
csrf.exempt(bp)  # amoCRM's redirect is a GET from another site; the confirmation form checks its own token
BROWSER_BINDING_KEY = "cs_oauth_binding"  # set by the admin when it starts a connect (integration_views)


class ConfirmForm(FlaskForm):
    """No fields: the CSRF token is the point (Flask-WTF checks it even where CSRFProtect is exempt)."""


def _integration_url(integration_id: int | None) -> str | None:
    if not integration_id:
        return None
    try:
        return url_for("integrations.setup", integration_id=integration_id)
    except Exception:  # noqa: BLE001 - an app without the admin
        return None


# OAuth 2.0's error codes (RFC 6749 §4.1.2.1) that amoCRM puts on the redirect, in words.
AMOCRM_ERRORS = {
    "access_denied": N_("access was refused"),
    "invalid_request": N_("the request was malformed"),
    "unauthorized_client": N_("the integration may not ask for access"),
    "unsupported_response_type": N_("the kind of request is not supported"),
    "invalid_scope": N_("the requested rights are not valid"),
    "server_error": N_("amoCRM had an internal error"),
    "temporarily_unavailable": N_("amoCRM is temporarily unavailable"),
}


def _detail(exc: ConnectError) -> str:
    """A line under the message: amoCRM's own answer in words; nothing when the code says it all
    (core's English `message` is for logs and the API, not for the page)."""
    if exc.amocrm_error:
        said = AMOCRM_ERRORS.get(exc.amocrm_error)
        return _("amoCRM's answer: %(answer)s (%(code)s)", answer=_(said) if said else exc.amocrm_error,
                 code=exc.amocrm_error)
    return "" if exc.code in CONNECT_ERRORS else exc.message


def _failure(exc: ConnectError):
    log.info("amoCRM connect failed: %s (integration %s)", exc.code, exc.integration_id)
    message = connect_error(exc.code, exc.message)
    if exc.code == "wrong_account":  # nothing about the other account's integration is shown
        return _private(render_template("oauth_result.html", ok=False, code=exc.code, message=message,
                                        detail="", integration_id=None, return_to=None), 403)
    if _still_connected(exc.integration_id):  # a refused reconnect leaves the working connection alone
        message = f"{message} " + _("The previous connection still works: chats are still recorded.")
    flash(_("amoCRM was not connected: %(reason)s", reason=message), "error")
    return _private(render_template(
        "oauth_result.html", ok=False, code=exc.code, message=message,
        detail=_detail(exc), integration_id=exc.integration_id, return_to=_integration_url(exc.integration_id),
    ), 400)


def _still_connected(integration_id: int | None) -> bool:
    from core.models import Integration

    row = db.session.get(Integration, integration_id) if integration_id else None
    return bool(row is not None and row.status == "connected" and row.access_token_enc)


def _success(result):
    outbox.enqueue_talk_events(result.to_enqueue)
    # Chats closed while the connection was broken and no webhook reached us: read amoCRM's event log now.
    outbox.enqueue_reconcile(result.integration_id)
    flash(_("amoCRM is connected: %(account)s.", account=result.account_name or "—"), "success")
    warnings = [translate(w) for w in result.warnings]
    for warning in warnings:
        flash(warning, "warning")
    return_to = safe_next(result.return_to, "") or _integration_url(result.integration_id)
    return _private(render_template(
        "oauth_result.html", ok=True, code="connected", account_name=result.account_name,
        webhook_registered=result.webhook_registered, warnings=warnings,
        integration_id=result.integration_id, return_to=return_to,
    ))


@bp.get("/oauth/amocrm/callback")
def callback():
    services = current_app.extensions["chatsource.services"]
    try:
        result = receive_callback(
            services,
            state=request.args.get("state"),
            code=request.args.get("code"),
            referer=request.args.get("referer"),
            error=request.args.get("error"),
            user_id=current_user.id if current_user.is_authenticated else None,
            browser_binding=session.get(BROWSER_BINDING_KEY),
        )
    except ConnectError as exc:
        return _failure(exc)
    if isinstance(result, PendingConfirmation):
        confirm_url = url_for("oauth.confirm", token=result.token)
        target = confirm_url if current_user.is_authenticated else url_for("auth.login", next=confirm_url)
        return _private(redirect(target))
    return _success(result)


@bp.route("/oauth/amocrm/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    if not current_user.is_authenticated:
        return _private(redirect(url_for("auth.login", next=request.path)))
    services = current_app.extensions["chatsource.services"]
    form = ConfirmForm()
    try:
        details = confirmation_details(db.session, token, current_user.account_id)
        if request.method == "POST":
            if not form.validate_on_submit():
                return _private(_confirm_page(details, form, stale_form=True), 400)
            db.session.rollback()  # confirm_connect works in its own sessions (it locks the row)
            return _success(confirm_connect(services, token, current_user.account_id))
    except ConnectError as exc:
        db.session.rollback()
        return _failure(exc)
    return _private(_confirm_page(details, form, stale_form=False))


def _confirm_page(details, form, stale_form: bool) -> str:
    """The confirmation page; its one time (the code's expiry) in the account's time zone, named."""
    zone = account_time_zone(db.session, current_user.account_id)
    expires = details.expires_at.astimezone(get_zone(zone)).strftime("%H:%M") if details.expires_at else "—"
    return render_template("oauth_confirm.html", details=details, form=form, stale_form=stale_form,
                           expires_local=expires, zone=zone)


def _private(response, status: int | None = None):
    """The callback url carries the one-time code and the confirmation url its token: neither may
    leak as a Referer or sit in a cache."""
    response = current_app.make_response(response if status is None else (response, status))
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
