"""The admin (Flask-Admin, Russian first): built inside `create_app` by `init_admin(app)`, because
module-level views collide on blueprint names when tests create several apps.

Screens: the start page, the amoCRM integration setup (the spec's seven steps), the dictionaries
(sites, sources, ad campaigns) and the data (webhook events with replay, requests). Every view is
behind the sign-in (`web.auth`) and sees only its user's account.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.theme import Bootstrap4Theme
from flask_babel import lazy_gettext as _l

from core.models import ChatRequest, Integration, Site, WebhookEvent
from web.admin.security import AdminAccess, current_account_id
from web.extensions import db


class HomeView(AdminAccess, AdminIndexView):
    @expose("/")
    def index(self):
        account_id = current_account_id()
        rows = db.session.scalars(sa.select(Integration).where(Integration.account_id == account_id).order_by(Integration.id)).all()
        counts = {
            "sites": db.session.scalar(sa.select(sa.func.count()).select_from(Site).where(Site.account_id == account_id)),
            "requests": db.session.scalar(sa.select(sa.func.count()).select_from(ChatRequest).where(ChatRequest.account_id == account_id)),
            "failed": db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEvent).where(
                WebhookEvent.account_id == account_id, WebhookEvent.status.in_(("failed", "parked")))),
        }
        return self.render("admin/cs_home.html", integrations=rows, counts=counts)


def init_admin(app: Flask) -> Admin:
    from web.admin import catalog_views, event_views, integration_views

    from web.i18n import TRANSLATIONS_DIR

    admin = Admin(
        app,
        name="Chatsource",
        translations_path=str(TRANSLATIONS_DIR),  # Flask-Admin's Russian, compiled fresh (web.i18n)
        theme=Bootstrap4Theme(base_template="admin/cs_base.html", fluid=True),
        index_view=HomeView(name=_l("Home"), url="/admin"),
    )
    for view in integration_views.make_views() + catalog_views.make_views() + event_views.make_views():
        admin.add_view(view)
    app.extensions["chatsource.admin"] = admin
    return admin
