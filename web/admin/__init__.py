"""The admin (Flask-Admin, Russian first): built inside `create_app` by `init_admin(app)`, because
module-level views collide on blueprint names when tests create several apps.

Screens: the dashboard (the first page), the amoCRM integration setup (the spec's seven steps), the
dictionaries (sites, sources, ad campaigns) and «Сырые данные» (Raw data): «Обращения и цели» (the
requests report with its CSV), the webhook events with replay, and replay by filter. Every view is
behind the sign-in (`web.auth`) and sees only its user's account.
"""
from __future__ import annotations

import os

import flask_admin
import flask_admin.babel
from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme
from flask_babel import lazy_gettext as _l


def init_admin(app: Flask) -> Admin:
    from web.admin import catalog_views, dashboard_views, event_views, integration_views, report_views, settings_views
    from web.i18n import TRANSLATIONS_DIR

    admin = Admin(
        app,
        name="Chatsource",
        translations_path=str(TRANSLATIONS_DIR),  # Flask-Admin's Russian, compiled fresh (web.i18n)
        theme=Bootstrap4Theme(base_template="admin/cs_base.html", fluid=True),
        index_view=dashboard_views.DashboardView(name=_l("Dashboard"), url="/admin"),
    )
    # Only our folder: it holds Flask-Admin's whole catalogue compiled fresh, with our corrections
    # (web/i18n.py). flask-babel merges folders in order, so Flask-Admin's shipped .mo, read after
    # ours, would put «Добавить Фильтр» and «50 элементы» back.
    flask_admin.babel.domain._translation_directories = []
    views = (integration_views.make_views() + catalog_views.make_views() + report_views.make_views()
             + event_views.make_views() + report_views.make_replay_views() + settings_views.make_views())
    for view in views:
        admin.add_view(view)
    dashboard_views.install(app)
    _stock_templates_under_a_prefix(app)
    app.extensions["chatsource.admin"] = admin
    return admin


def _stock_templates_under_a_prefix(app: Flask) -> None:
    """Flask-Admin's own templates as `flask_admin_stock/…`, so that our few overrides (the macros
    that carried `onclick=` handlers, which the CSP forbids) can delegate every other macro to them."""
    from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader

    stock = FileSystemLoader(os.path.join(os.path.dirname(flask_admin.__file__), "templates", "bootstrap4"))
    app.jinja_env.loader = ChoiceLoader([app.jinja_env.loader, PrefixLoader({"flask_admin_stock": stock})])
