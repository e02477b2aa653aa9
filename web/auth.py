"""Admin sign-in and sign-out (Flask-Login). Users come from `flask --app wsgi users set EMAIL` or
ADMIN_EMAIL / ADMIN_PASSWORD on start; password guessing is slowed down by `core.login`."""
from __future__ import annotations

import hashlib
import logging

from flask import Blueprint, Flask, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from core.login import authenticate
from core.models import User
from web.extensions import db, login_manager
from web.i18n import safe_next

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


class AdminUser(UserMixin):
    """The signed-in admin. The session id carries a fingerprint of the password hash, so changing
    the password (`users set`) signs out every other session of that user."""

    def __init__(self, row: User):
        self.row = row
        self.id = row.id
        self.account_id = row.account_id
        self.email = row.email
        self.locale = row.locale

    @staticmethod
    def fingerprint(row: User) -> str:
        return hashlib.sha256((row.password_hash or "").encode()).hexdigest()[:16]

    def get_id(self) -> str:
        return f"{self.row.id}:{self.fingerprint(self.row)}"

    @property
    def is_active(self) -> bool:
        return bool(self.row.is_active)


def load_user(user_id: str):
    raw_id, _, fingerprint = (user_id or "").partition(":")
    if not raw_id.isdigit():
        return None
    row = db.session.get(User, int(raw_id))
    if row is None or not row.is_active or AdminUser.fingerprint(row) != fingerprint:
        return None
    return AdminUser(row)


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=500)])


def _default_target() -> str:
    return url_for("admin.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = safe_next(request.args.get("next"), _default_target())
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm()
    error, status, retry_after = None, 200, 0
    if form.validate_on_submit():
        result = authenticate(db.session, form.email.data, form.password.data)
        db.session.commit()
        if result.ok:
            locale = session.get("locale")
            session.clear()  # nothing from before the sign-in survives it (but the language choice)
            if locale:
                session["locale"] = locale
            login_user(AdminUser(result.user))
            log.info("admin %s signed in", result.user.id)
            return redirect(target)
        if result.status == "locked" or result.retry_after:
            retry_after = result.retry_after
            error = _("Too many failed sign-in attempts. Try again in %(seconds)s s.", seconds=retry_after)
            status = 429
        elif result.status == "inactive":
            error = _("This user is switched off. Ask another administrator to enable it.")
            status = 403
        else:
            error = _("Wrong e-mail or password.")
            status = 401
        log.info("failed admin sign-in (%s)", result.status)
    elif request.method == "POST":
        status = 400
    response = current_app.make_response((render_template("auth/login.html", form=form, error=error, next=target), status))
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.post("/logout")
def logout():
    locale = session.get("locale")
    logout_user()
    session.clear()
    if locale:
        session["locale"] = locale
    return redirect(url_for("auth.login"))


def init_auth(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to open this page.")
    login_manager.login_message_category = "info"
    app.register_blueprint(bp)

    @app.get("/")
    def home():
        return redirect(url_for("admin.index"))

    @app.after_request
    def _admin_headers(response):
        """The admin and the sign-in page are never framed by another site (clickjacking)."""
        if request.path.startswith(("/admin", "/login", "/logout")):
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "same-origin")
        return response
