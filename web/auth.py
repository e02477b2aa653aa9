"""Admin sign-in and sign-out (Flask-Login). Users come from `flask --app wsgi users set EMAIL` or
ADMIN_EMAIL / ADMIN_PASSWORD on start; password guessing is slowed down by `core.access.login` per user and
by a quota per client IP, and every failed sign-in gets the same answer, so nothing tells which
e-mails have an account.

A session lives `SESSION_LIFETIME_HOURS` from its sign-in, however busy. The user's
`session_nonce` is part of the session's user id: signing out or changing the password replaces it,
which ends every copy of every cookie of that user at once (a cookie is only signed, so without a
server-side check a copied cookie would outlive the sign-out)."""
from __future__ import annotations

import hmac
import logging
import time
from datetime import timedelta

from flask import Blueprint, Flask, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from core.access.accounts import rotate_session_nonce
from core.access.login import FREE_FAILURES, authenticate
from core.models import User
from core.platform.ratelimit import Quota, QuotaExceeded, client_bucket
from web.extensions import db, login_manager
from web.i18n import safe_next

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


SIGNED_IN_AT_KEY = "cs_signed_in_at"
LOGIN_WINDOW_SECONDS = 600


class AdminUser(UserMixin):
    """The signed-in admin; its id in the session is `user id:session nonce`."""

    def __init__(self, row: User):
        self.row = row
        self.id = row.id
        self.account_id = row.account_id
        self.email = row.email
        self.locale = row.locale

    def get_id(self) -> str:
        return f"{self.row.id}:{self.row.session_nonce}"

    @property
    def is_active(self) -> bool:
        return bool(self.row.is_active)


def load_user(user_id: str):
    raw_id, _, nonce = (user_id or "").partition(":")
    if not raw_id.isdigit() or not nonce:
        return None
    lifetime = current_app.extensions["chatsource.settings"].session_lifetime_hours * 3600
    signed_in_at = session.get(SIGNED_IN_AT_KEY)
    if not isinstance(signed_in_at, (int, float)) or not 0 <= time.time() - signed_in_at < lifetime:
        return None
    row = db.session.get(User, int(raw_id))
    if row is None or not row.is_active or not row.session_nonce or not hmac.compare_digest(row.session_nonce, nonce):
        return None
    return AdminUser(row)


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=500)])


def _default_target() -> str:
    return url_for("admin.index")


def _login_quota() -> Quota:
    settings = current_app.extensions["chatsource.settings"]
    return Quota("login_per_ip", f"login:ip:{client_bucket(request.remote_addr, settings.ip_salt)}",
                 settings.login_attempts_per_ip, LOGIN_WINDOW_SECONDS)


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = safe_next(request.args.get("next"), _default_target())
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm()
    error, status, retry_after = None, 200, 0
    if form.validate_on_submit():
        try:
            current_app.extensions["chatsource.services"].quotas.admit(_login_quota())
        except QuotaExceeded as exc:
            # About this network, not about an account: it says nothing of which e-mails exist.
            retry_after = exc.retry_after
            error = _("Too many sign-in attempts from your network. Try again in %(seconds)s s.", seconds=retry_after)
            status = 429
            log.info("admin sign-in refused: too many attempts from one address")
        else:
            result = authenticate(db.session, form.email.data, form.password.data)
            db.session.commit()
            if result.ok:
                return _sign_in(result.user, target)
            # Unknown e-mail, wrong password, locked or switched off: one answer for all.
            error = _("Wrong e-mail or password.") + " " + _(
                "After %(n)s failed attempts in a row, signing in pauses for a while (at most 15 minutes).", n=FREE_FAILURES)
            status = 401
            log.info("failed admin sign-in (%s)", result.status)
    elif request.method == "POST":
        status = 400
    response = current_app.make_response((render_template("auth/login.html", form=form, error=error, next=target), status))
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _sign_in(user: User, target: str):
    locale = session.get("locale")
    session.clear()  # nothing from before the sign-in survives it (but the language choice)
    if locale:
        session["locale"] = locale
    if not user.session_nonce:  # a user from before session nonces
        rotate_session_nonce(user)
        db.session.commit()
    session.permanent = True  # the cookie ends with the session's lifetime, not with the browser
    session[SIGNED_IN_AT_KEY] = int(time.time())
    login_user(AdminUser(user))
    log.info("admin %s signed in", user.id)
    return redirect(target)


@bp.post("/logout")
def logout():
    locale = session.get("locale")
    if current_user.is_authenticated:
        row = db.session.get(User, current_user.id)
        if row is not None:
            rotate_session_nonce(row)  # every other copy of this user's cookies is signed out too
            db.session.commit()
    logout_user()
    session.clear()
    if locale:
        session["locale"] = locale
    return redirect(url_for("auth.login"))


def init_auth(app: Flask) -> None:
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.extensions["chatsource.settings"].session_lifetime_hours)
    login_manager.init_app(app)
    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to open this page.")
    login_manager.login_message_category = "info"
    app.register_blueprint(bp)

    @app.get("/")
    def home():
        return redirect(url_for("admin.index"))

    @app.get("/favicon.ico")
    def favicon():  # what browsers ask for on pages without a <link rel="icon"> (the API's JSON, 404s)
        return redirect(url_for("static", filename="favicon.svg"), 301)

    @app.after_request
    def _admin_headers(response):
        """The admin and the sign-in page are never framed by another site (clickjacking)."""
        if request.path.startswith(("/admin", "/login", "/logout")):
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
