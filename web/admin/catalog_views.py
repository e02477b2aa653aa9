"""The account's dictionaries: sites (with the tracking code to install), sources and ad campaigns
(with their condition groups and priority). Saving goes through `core.tracking.catalog`, like the Data API."""
from __future__ import annotations

import logging

from flask import current_app, flash
from flask_babel import format_datetime, get_translations
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from core.models import Campaign, Site, Source
from core.platform.errors import NotFound, ValidationFailed
from core.tracking import catalog
from web.admin.fields import ConditionsField
from web.admin.messages import translate
from web.admin.security import AccountScopedModelView, AdminSecureForm, current_account_id
from web.extensions import db

log = logging.getLogger(__name__)


def copy_block(text: str, rows: int = 4, testid: str = "") -> Markup:
    """A read-only text with a copy button (admin.js)."""
    return Markup(
        '<div class="cs-copy"><textarea class="form-control cs-code" readonly rows="{rows}" data-testid="{testid}">{text}</textarea>'
        '<button type="button" class="btn btn-sm btn-outline-primary mt-1 cs-copy-btn" data-copied="{copied}">{label}</button></div>'
    ).format(text=text, rows=rows, testid=testid, label=_("Copy"), copied=_("Copied"))


def tracking_snippet(site: Site) -> str:
    """The main tracking code of a site, as `core.tracking.collect` writes it for this server's address."""
    from core.tracking.collect import tracking_snippet as make

    return make(current_app.extensions["chatsource.settings"].public_url, site, get_translations())


class CatalogView(AccountScopedModelView):
    """Create and edit through core functions, whose messages land on the right form field."""

    can_view_details = True
    column_display_actions = True
    field_map: dict = {}

    def _apply_failure(self, form, exc: ValidationFailed) -> None:
        message = translate(exc)
        field = getattr(form, self.field_map.get(exc.field, exc.field or ""), None)
        if field is not None:
            field.errors = list(field.errors) + [message]
        flash(message, "error")

    def _save(self, form, model=None):
        try:
            row = self.save(form, model)
            db.session.commit()
            return row
        except ValidationFailed as exc:
            db.session.rollback()
            self._apply_failure(form, exc)
        except NotFound:
            db.session.rollback()
            flash(_("Record does not exist."), "error")
        return None

    def create_model(self, form):
        return self._save(form)

    def update_model(self, form, model):
        return self._save(form, model) is not None

    def get_save_return_url(self, model, is_created=False):
        return self.get_url(".details_view", id=model.id)

    def save(self, form, model):  # pragma: no cover - every subclass implements it
        raise NotImplementedError


class SiteForm(AdminSecureForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    domain = StringField(_l("Domain"), validators=[DataRequired(), Length(max=253)],
                         description=_l("The site's address without http://, e.g. shop.example.ru"))


def _last_page_view(view, context, model, name):
    from core.tracking.refusals import last_page_views

    seen = last_page_views(db.session, [model.id]).get(model.id)
    if seen is None:
        return Markup('<span class="text-muted" data-testid="last-view">{}</span>').format(_("none yet"))
    return Markup('<span data-testid="last-view">{}</span>').format(format_datetime(seen, "short"))


REFUSAL_REASONS = {
    "wrong_domain": _l("a page of another domain: %(detail)s"),
    "bot": _l("a bot (not counted): %(detail)s"),
}


def _last_refused(view, context, model, name):
    if not model.last_refused_at:
        return Markup('<span class="text-muted" data-testid="last-refused">—</span>')
    why = REFUSAL_REASONS.get(model.last_refused_reason)
    text = str(why) % {"detail": model.last_refused_detail or "—"} if why else model.last_refused_reason
    return Markup('<span class="text-danger" data-testid="last-refused">{}</span><div class="small text-muted">{}</div>').format(
        text, format_datetime(model.last_refused_at, "short"))


class SiteView(CatalogView):
    form = SiteForm
    column_list = ("name", "domain", "site_key", "last_view", "last_refused", "created_at")
    column_details_list = ("name", "domain", "site_key", "last_view", "last_refused", "tracking_code", "created_at")
    column_searchable_list = ("name", "domain")
    column_default_sort = ("name", False)
    column_labels = {"name": _l("Name"), "domain": _l("Domain"), "site_key": _l("Site key"),
                     "tracking_code": _l("Main tracking code"), "created_at": _l("Created"),
                     "last_view": _l("Last page view received"), "last_refused": _l("Last page view refused")}
    column_descriptions = {"site_key": _l("Identifies the site in the tracking code")}

    def _tracking(self, context, model, name):
        snippet = tracking_snippet(model)
        hint = Markup('<p class="small text-muted mb-1">{}</p>').format(
            _("Install it on every page of the site, before the closing </head> tag."))
        return hint + copy_block(snippet, rows=9, testid="tracking-code")

    column_formatters = {"last_view": _last_page_view, "last_refused": _last_refused}
    column_formatters_detail = {
        "site_key": lambda v, c, m, n: Markup("<code>{}</code>").format(m.site_key),
        "tracking_code": _tracking,
        "last_view": _last_page_view,
        "last_refused": _last_refused,
    }

    def save(self, form, model):
        if model is None:
            return catalog.create_site(db.session, current_account_id(), form.name.data, form.domain.data)
        return catalog.update_site(db.session, current_account_id(), model.id, form.name.data, form.domain.data)


class RuleForm(AdminSecureForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    priority = IntegerField(_l("Priority"), default=100, validators=[InputRequired(), NumberRange(0, 1_000_000)],
                            description=_l("Rules are tried from the lowest number up; the first that matches wins."))
    conditions = ConditionsField(_l("Conditions"), description=_l(
        "A session matches when any group matches; a group matches when all its conditions hold."))


def _conditions_summary(view, context, model, name):
    from web.admin.fields import OP_LABELS, PARAM_LABELS

    groups = model.conditions or []
    if not groups:
        return Markup('<span class="text-muted">{}</span>').format(_("no conditions"))
    parts = []
    for group in groups[:3]:
        conds = [
            ("%s%s %s «%s»" % (_("not ") if c.get("exclude") else "", _(PARAM_LABELS.get(c.get("param"), c.get("param") or "")),
                              _(OP_LABELS.get(c.get("op"), c.get("op") or "")), (c.get("value") or "")[:60]))
            for c in group
        ]
        parts.append((" %s " % _("and")).join(conds))
    text = (" %s " % _("or").upper()).join(parts) + (" …" if len(groups) > 3 else "")
    return Markup('<span class="small">{}</span>').format(text)


class SourceView(CatalogView):
    form = RuleForm
    column_list = ("priority", "name", "conditions")
    column_details_list = ("name", "priority", "conditions", "created_at")
    column_searchable_list = ("name",)
    column_sortable_list = ("priority", "name")
    column_default_sort = [("priority", False), ("id", False)]
    column_labels = {"name": _l("Name"), "priority": _l("Priority"), "conditions": _l("Conditions"), "created_at": _l("Created")}
    column_formatters = {"conditions": _conditions_summary}

    def get_save_return_url(self, model, is_created=False):
        return self.get_url(".index_view")

    def save(self, form, model):
        args = (form.name.data, form.priority.data, form.conditions.data)
        if model is None:
            return catalog.create_source(db.session, current_account_id(), *args)
        return catalog.update_source(db.session, current_account_id(), model.id, *args)


class CampaignForm(AdminSecureForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    site_id = SelectField(_l("Site"), coerce=int, validators=[InputRequired()],
                          description=_l("An ad campaign belongs to one site."))
    priority = IntegerField(_l("Priority"), default=100, validators=[InputRequired(), NumberRange(0, 1_000_000)],
                            description=_l("Rules are tried from the lowest number up; the first that matches wins."))
    conditions = ConditionsField(_l("Conditions"), description=_l(
        "A session matches when any group matches; a group matches when all its conditions hold."))


class CampaignView(SourceView):
    form = CampaignForm
    column_list = ("priority", "name", "site", "conditions")
    column_details_list = ("name", "site", "priority", "conditions", "created_at")
    column_labels = dict(SourceView.column_labels, site=_l("Site"))
    column_formatters = {"conditions": _conditions_summary, "site": lambda v, c, m, n: m.site.name if m.site else "—"}

    def _site_choices(self):
        rows = db.session.query(Site).filter(Site.account_id == current_account_id()).order_by(Site.name).all()
        return [(s.id, f"{s.name} ({s.domain})") for s in rows]

    def create_form(self, obj=None):
        form = super().create_form(obj)
        form.site_id.choices = self._site_choices()
        if not form.site_id.choices:
            flash(_("Add a site first: an ad campaign belongs to a site."), "warning")
        return form

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        form.site_id.choices = self._site_choices()
        return form

    def save(self, form, model):
        args = (form.name.data, form.site_id.data, form.priority.data, form.conditions.data)
        if model is None:
            return catalog.create_campaign(db.session, current_account_id(), *args)
        return catalog.update_campaign(db.session, current_account_id(), model.id, *args)


def make_views():
    return [
        SiteView(Site, name=_l("Sites"), endpoint="sites", category=_l("Dictionaries")),
        SourceView(Source, name=_l("Sources"), endpoint="sources", category=_l("Dictionaries")),
        CampaignView(Campaign, name=_l("Ad campaigns"), endpoint="campaigns", category=_l("Dictionaries")),
    ]
