"""One lock for every admin screen, one CSRF token for every admin form, one account per query.

* `AdminAccess` is mixed into every view, the index included: anonymous visitors are sent to the
  sign-in page with a relative `next`, and nothing else is reachable.
* `AdminSecureForm` is the base of every Flask-Admin form. Flask-Admin's `SecureForm` uses WTForms'
  SessionCSRF, whose token the app-wide Flask-WTF `CSRFProtect` rejects; so the admin forms carry
  Flask-WTF's token instead — the same one `CSRFProtect` checks on every POST (custom views render it
  with `csrf_token()`), so each form is protected once, consistently.
* `AccountScopedModelView` filters every list, count, lookup and bulk action by the signed-in user's
  account and stamps new rows with it: another account's row is "not found", never shown or changed.
"""
from __future__ import annotations

from datetime import datetime

from flask import redirect, request, url_for
from flask_admin.babel import Translations
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import BaseForm
from flask_admin.model import typefmt
from flask_babel import format_datetime
from flask_login import current_user
from flask_wtf import FlaskForm

from web.extensions import db


def current_account_id() -> int:
    return current_user.account_id


class AdminAccess:
    def is_accessible(self) -> bool:
        return bool(current_user and current_user.is_authenticated)

    def inaccessible_callback(self, name, **kwargs):
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("auth.login", next=target))


class AdminSecureForm(BaseForm):
    class Meta(FlaskForm.Meta):
        _translations = Translations()

        def get_translations(self, form):
            return self._translations


def _datetime(view, value, name=None):
    return format_datetime(value, "short")  # in the account's zone (web.i18n), named in the page header


DATETIME_FORMATTERS = {**typefmt.BASE_FORMATTERS, datetime: _datetime}


class AccountScopedModelView(AdminAccess, ModelView):
    form_base_class = AdminSecureForm
    page_size = 50
    can_set_page_size = True
    column_type_formatters = DATETIME_FORMATTERS
    column_type_formatters_detail = DATETIME_FORMATTERS

    def __init__(self, model, **kwargs):
        super().__init__(model, db, **kwargs)

    def get_query(self):
        return super().get_query().filter(self.model.account_id == current_account_id())

    def get_count_query(self):
        return super().get_count_query().filter(self.model.account_id == current_account_id())

    def get_one(self, id):
        try:
            row = db.session.get(self.model, int(id))
        except (TypeError, ValueError):
            return None
        if row is None or row.account_id != current_account_id():
            return None
        return row

    def on_model_change(self, form, model, is_created):
        if is_created:
            model.account_id = current_account_id()
        elif model.account_id != current_account_id():  # pragma: no cover - get_one already refuses
            raise PermissionError("not your account's row")
