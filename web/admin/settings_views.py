"""`/admin/settings/`: the account's settings a marketer may change — today its time zone, in which
every time on every screen is shown (core.platform.time_zones)."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.platform.errors import ValidationFailed
from core.platform.time_zones import account_time_zone, set_time_zone, zone_choices
from web.admin.security import AdminAccess, current_account_id
from web.extensions import db


class AccountSettingsView(AdminAccess, BaseView):
    @expose("/", methods=("GET", "POST"))
    def index(self):
        account_id = current_account_id()
        chosen, problem = account_time_zone(db.session, account_id), None
        if request.method == "POST":
            chosen = (request.form.get("time_zone") or "").strip()
            try:
                set_time_zone(db.session, account_id, chosen)
            except ValidationFailed:
                db.session.rollback()
                problem = _("Choose the time zone from the list.")
            else:
                db.session.commit()
                flash(_("The time zone is saved: every time is now shown in %(zone)s.", zone=chosen), "success")
                return redirect(url_for(".index"))
        return self.render("admin/cs_settings.html", chosen=chosen, zones=zone_choices(), problem=problem), (422 if problem else 200)


def make_views():
    return [AccountSettingsView(name=_l("Account settings"), endpoint="account_settings", url="settings")]
