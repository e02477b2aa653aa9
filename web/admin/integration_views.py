"""The amoCRM integration setup screen: one page that follows the spec's seven steps, in its words.

1 credentials and «Connect» (popup, or a redirect when popups are blocked or JavaScript is off;
both end back here) → 2 «Webhook url» (copy; registered in amoCRM or not; register again) → 3 the
session custom field from amoCRM's lead and contact fields → 4 «Traffic type» and its default → 5
the messenger mapping → 6 «Active» + «Save» → 7 «Скрипт для вашего сайта». A status panel
shows the connection, token expiry, last event, last error and today's requests, with reconnect,
disconnect and «Проверить интеграцию».

Every change goes through the same core functions as the Data API; this module only turns form
fields into their arguments and their errors into messages.
"""
from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import abort, current_app, flash, jsonify, redirect, request, session, url_for
from flask_admin import BaseView, expose
from flask_babel import get_translations
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core.amocrm.errors import AmoCrmError, ReauthRequired
from core.amocrm.messengers import KNOWN_MESSENGERS, channel_for_origin, channel_label, messenger_name
from core.inbox import reconciliation
from core.integrations import live_check
from core.integrations import settings as integrations
from core.integrations.connect import ConnectError, check_connectable, disconnect, register_webhook, start_connect
from core.integrations.diagnostics import check_integration, requests_today
from core.integrations.removal import delete_integration, is_draft
from core.integrations.webhook_rotation import rotate_webhook
from core.models import Campaign, Integration, Site, Source
from core.platform.crypto import new_token
from core.platform.errors import NotFound, ValidationFailed
from core.platform.messages import N_, Message
from core.reporting import report as reports
from web.admin.dashboard_views import format_moment
from web.admin.messages import connect_error, connect_error_fields, translate
from web.admin.security import AdminAccess, current_account_id
from web.extensions import db
from web.i18n import current_locale
from web.messages import say
from web.oauth import BROWSER_BINDING_KEY
from workers import outbox

log = logging.getLogger(__name__)

SUITABLE_FIELD_TYPES = ("text", "numeric", "textarea", "tracking_data")
# amoCRM's field types (GET /api/v4/{entity}/custom_fields `type`) in words, for «type … does not fit».
FIELD_TYPE_LABELS = {
    "checkbox": N_("checkbox"), "select": N_("list"), "multiselect": N_("multiple choice list"), "date": N_("date"),
    "url": N_("link"), "radiobutton": N_("radio buttons"), "streetaddress": N_("short address"),
    "smart_address": N_("address"), "birthday": N_("birthday"), "legal_entity": N_("legal entity"),
    "date_time": N_("date and time"), "price": N_("price"), "category": N_("category"), "items": N_("items list"),
    "linked_entity": N_("linked entity"), "chained_list": N_("chained lists"), "monetary": N_("money"),
    "file": N_("file"), "payer": N_("payer"), "supplier": N_("supplier"),
    "multitext": N_("phone or e-mail (several values)"),
}


def field_type_label(kind: str) -> str:
    label = FIELD_TYPE_LABELS.get(kind)
    return f"«{_(label)}»" if label else kind
STEP1_FIELDS = ("name", "amocrm_url", "token_url", "client_id")
CONNECT_PROBLEM_KEY = "cs_connect_problem"
INTERNATIONAL_CHANNELS = ("tiktok", "mercadolibre", "lazada")  # Kommo's channels outside Russia


def services():
    return current_app.extensions["chatsource.services"]


def _int_or_none(value):
    value = (value or "").strip() if isinstance(value, str) else value
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# What `activation_problems` asks for (by its code) → the field to mark and its step.
_ACTIVATION_TARGETS = {
    integrations.CONNECT_FIRST.code: (None, "step-1"),
    integrations.RECONNECT.code: (None, "step-1"),
    integrations.CHOOSE_SESSION_FIELD.code: ("session_field", "step-3"),
    integrations.CHOOSE_DEFAULT_CAMPAIGN.code: ("default_campaign_id", "step-4"),
    integrations.CHOOSE_DEFAULT_SOURCE.code: ("default_source_id", "step-4"),
    integrations.CHOOSE_DEFAULT_SITE.code: ("default_site_id", "step-4"),
}


def _activation_target(missing) -> dict:
    target = _ACTIVATION_TARGETS.get(getattr(missing, "code", None))
    if target is None:
        return {"field": None, "anchor": "step-6", "step": "step-6"}
    field, step = target
    # The session field's list exists only once connected: its step is always there.
    return {"field": field, "anchor": field if field and field != "session_field" else step, "step": step}


class FormProblem(Exception):
    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field, self.message = field, message


class IntegrationsView(AdminAccess, BaseView):
    """`/admin/integrations/`: the list, `new`, and each integration's setup page."""

    # -- helpers ---------------------------------------------------------------------------------

    def _get(self, integration_id: int) -> Integration:
        try:
            return integrations.get_integration(db.session, current_account_id(), integration_id)
        except NotFound:
            abort(404)

    def _setup_url(self, integration_id: int, anchor: str | None = None) -> str:
        url = url_for(".setup", integration_id=integration_id)
        return f"{url}#{anchor}" if anchor else url

    @staticmethod
    def _wants_json() -> bool:
        return request.headers.get("X-Chatsource-Connect") == "popup"

    @staticmethod
    def _step1_data(form) -> dict:
        """Step 1's fields as typed; an empty client secret keeps the stored one."""
        data = {k: (form.get(k) or "").strip() for k in STEP1_FIELDS if k in form}
        secret = (form.get("client_secret") or "").strip()
        if secret:
            data["client_secret"] = secret
        return data

    def _choices(self):
        account_id = current_account_id()
        sites = db.session.scalars(sa.select(Site).where(Site.account_id == account_id).order_by(Site.name)).all()
        sources = db.session.scalars(sa.select(Source).where(Source.account_id == account_id).order_by(Source.priority, Source.name)).all()
        campaigns = db.session.scalars(sa.select(Campaign).where(Campaign.account_id == account_id).order_by(Campaign.priority, Campaign.name)).all()
        return sites, sources, campaigns

    def _messenger_rows(self, integration: Integration, values: dict) -> list[dict]:
        """One row per messenger (its origin codes together: TikTok has three), the known ones first,
        then every other code amoCRM has sent to this integration or that is already mapped. Kommo's
        international channels stay folded unless used."""
        rows: list[dict] = []
        by_name: dict[str, dict] = {}
        for m in KNOWN_MESSENGERS:
            row = by_name.get(m.name)
            if row is None:
                name = _("Online chat on the site") if m.channel == "site_chat" else messenger_name(m.origin, get_translations())
                row = by_name[m.name] = {"name": name, "origins": [], "more": m.channel in INTERNATIONAL_CHANNELS}
                rows.append(row)
            row["origins"].append(m.origin)
        known = {o for r in rows for o in r["origins"]}
        seen = integrations.seen_origins(db.session, integration.id)
        for origin in seen + [m.origin for m in integration.mappings] + list(values.get("mappings", {})):
            if origin not in known:
                name = (_("Online chat on the site") if channel_for_origin(origin) == "site_chat"
                        else messenger_name(origin, get_translations()))
                rows.append({"name": name, "origins": [origin], "more": False})
                known.add(origin)
        mappings = values.get("mappings", {})
        for row in rows:
            row["seen"] = any(o in seen for o in row["origins"])
            row["mapping"] = next((mappings[o] for o in row["origins"] if mappings.get(o)), {})
            row["more"] = row["more"] and not row["seen"] and not any(row["mapping"].values())
        return rows

    def _custom_fields(self, integration: Integration):
        """(fields, problem): amoCRM's lead and contact fields, or why they could not be read."""
        if integration.status == "new" or not integration.access_token_enc:
            return [], None
        try:
            return integrations.custom_fields(services(), integration), None
        except ReauthRequired:
            return [], _("amoCRM refused our tokens: press «Connect» to connect again.")
        except AmoCrmError as exc:
            return [], _("Could not read the custom fields from amoCRM: %(error)s", error=str(exc))

    @staticmethod
    def _requests_today(integration_ids) -> dict[int, int]:
        return requests_today(db.session, current_account_id(), integration_ids)

    def _values(self, integration: Integration) -> dict:
        values = {k: getattr(integration, k) or "" for k in STEP1_FIELDS}
        values.update(
            session_field=(f"{integration.session_field_entity}:{integration.session_field_id}" if integration.session_field_id else ""),
            traffic_type=integration.traffic_type,
            default_campaign_id=integration.default_campaign_id,
            default_source_id=integration.default_source_id,
            default_site_id=integration.default_site_id,
            is_active=integration.is_active,
            mappings={m.origin: {"campaign_id": m.campaign_id, "source_id": m.source_id, "site_id": m.site_id} for m in integration.mappings},
            excluded_channels=list(integration.excluded_channels or []),
            click_window_minutes=integration.click_window_minutes,
        )
        return values

    def _values_from_form(self, integration: Integration, form) -> dict:
        values = self._values(integration)
        values.update({k: form.get(k, values[k]) for k in STEP1_FIELDS})
        values["session_field"] = ":".join((form.get("session_field") or "").split(":")[:2])
        values["traffic_type"] = form.get("traffic_type") or values["traffic_type"]
        for key in ("default_campaign_id", "default_source_id", "default_site_id"):
            values[key] = _int_or_none(form.get(key))
        values["is_active"] = "is_active" in form
        values["mappings"] = {}
        for i, origin in self._posted_rows(form):
            values["mappings"][origin] = {k: _int_or_none(form.get(f"map_{k}_{i}")) for k in ("campaign_id", "source_id", "site_id")}
        if "channel_offered" in form:
            values["excluded_channels"] = self._excluded_channels(integration, form)
        if "click_window_minutes" in form:
            values["click_window_minutes"] = form.get("click_window_minutes")
        return values

    @staticmethod
    def _excluded_channels(integration: Integration, form) -> list[str]:
        """The channels offered and left unticked, plus those excluded earlier that were not offered."""
        offered = set(form.getlist("channel_offered"))
        ticked = set(form.getlist("channel_on"))
        earlier = set(integration.excluded_channels or []) - offered
        return sorted((offered - ticked) | earlier)

    def _channel_rows(self, integration: Integration, values: dict) -> list[dict]:
        excluded = set(values.get("excluded_channels") or [])
        return [{"code": code, "label": channel_label(code, get_translations()), "on": code not in excluded}
                for code in integrations.channel_choices(db.session, integration)]

    @staticmethod
    def _posted_rows(form) -> list[tuple[str, str]]:
        """(row index, origin) for every origin of every mapping row; a row may carry several codes."""
        rows = []
        for key in form:
            if key.startswith("map_origin_"):
                for origin in (form.get(key) or "").split():
                    rows.append((key[len("map_origin_"):], origin))
        return rows

    def _render_setup(self, integration: Integration, *, values=None, errors=None, activation_errors=None,
                      checks=None, status: int = 200, backfill_values=None, backfill_problem=None, live=None,
                      activation_refused=False):
        problem = session.pop(CONNECT_PROBLEM_KEY, None)
        connect_problem = problem["error"] if problem and problem.get("id") == integration.id else None
        if connect_problem:
            errors = {**{field: "" for field in problem.get("fields", [])}, **(errors or {})}
        sites, sources, campaigns = self._choices()
        fields, fields_problem = self._custom_fields(integration)
        values = values or self._values(integration)
        selected = values.get("session_field") or ""
        field_options = {"leads": [], "contacts": []}
        for f in fields:
            key = f"{f['entity']}:{f['id']}"
            field_options.setdefault(f["entity"], []).append({
                "value": f"{key}:{f.get('name') or ''}", "key": key, "name": f.get("name") or f"#{f['id']}",
                "type": f.get("type") or "", "type_label": field_type_label(f.get("type") or ""),
                "suitable": (f.get("type") or "text") in SUITABLE_FIELD_TYPES,
            })
        missing_field = None
        if selected and fields and not any(o["key"] == selected for opts in field_options.values() for o in opts):
            missing_field = {"key": selected, "name": integration.session_field_name or selected}
        body = self.render(
            "admin/cs_integration.html",
            integration=integration,
            draft=is_draft(db.session, integration),
            values=values,
            errors=errors or {},
            activation_errors=activation_errors or [],
            activation_refused=activation_refused,
            checks=checks,
            connect_problem=connect_problem,
            webhook_url=integrations.webhook_url(services(), integration),
            site_script=integrations.site_script(services(), integration, get_translations()),
            field_options=field_options,
            fields_problem=fields_problem,
            missing_field=missing_field,
            sites=sites, sources=sources, campaigns=campaigns,
            messenger_rows=self._messenger_rows(integration, values),
            channel_rows=self._channel_rows(integration, values),
            requests_today=self._requests_today([integration.id])[integration.id],
            backfills=reconciliation.list_backfills(db.session, current_account_id(), integration.id),
            backfill_values=backfill_values or {},
            backfill_problem=backfill_problem,
            reconcile_minutes=max(round(services().settings.reconcile_interval_seconds / 60), 1),
            campaign_label=lambda c: f"{c.name} ({c.site.name})" if c.site else c.name,
            live=live if live is not None else self._live_from_args(integration),
        )
        return body, status

    def _live_from_args(self, integration: Integration) -> dict | None:
        """The live check named in `?live_check=` (after «Проверить на тестовом обращении»)."""
        raw = (request.args.get("live_check") or "").strip()
        if not raw.isdigit():
            return None
        try:
            check = live_check.get_check(db.session, current_account_id(), integration.id, int(raw))
        except NotFound:
            return None
        return live_check_view(live_check.check_state(db.session, check), current_locale())

    def _connect_response(self, integration: Integration):
        """Start the OAuth connect: JSON for the popup, else a redirect to amoCRM in this window.
        A failure belongs to this attempt only: the popup's page shows it at once, the redirect
        path carries it to the one page load that follows (never to a later one)."""
        return_to = self._setup_url(integration.id)
        try:
            url = self._start_connect(integration, return_to)
        except ConnectError as exc:
            db.session.commit()  # what the admin typed is kept
            problem = self._connect_problem(integration, exc)
            if self._wants_json():
                return jsonify(problem), 422
            session[CONNECT_PROBLEM_KEY] = {"id": integration.id, **problem}
            return redirect(return_to + "#step-1")
        db.session.commit()
        if self._wants_json():
            return jsonify({"authorize_url": url, "return_to": return_to})
        return redirect(url)

    def _start_connect(self, integration: Integration, return_to: str) -> str:
        # The callback completes without a confirmation only in this browser session, for this user.
        binding = session.get(BROWSER_BINDING_KEY) or session.setdefault(BROWSER_BINDING_KEY, new_token(16))
        return start_connect(db.session, services(), integration, mode="popup", return_to=return_to,
                             user_id=current_user.id, browser_binding=binding)

    @staticmethod
    def _connect_problem(integration: Integration, exc: ConnectError) -> dict:
        """What to say about a refused connect, and which step 1 fields it is about."""
        message = connect_error(exc.code, exc.message)
        if exc.code == "host_not_allowed" and exc.said is not None:
            message = f"{message} {translate(exc.said)}"
        return {"error": message, "code": exc.code,
                "fields": connect_error_fields(exc.code, integration.amocrm_url, integration.token_url)}

    # -- pages -------------------------------------------------------------------------------------

    @expose("/")
    def index(self):
        rows = integrations.list_integrations(db.session, current_account_id())
        return self.render("admin/cs_integrations.html", rows=rows, drafts={r.id for r in rows if is_draft(db.session, r)},
                           today=self._requests_today([r.id for r in rows]))

    @expose("/new", methods=("GET", "POST"))
    def new(self):
        settings = current_app.extensions["chatsource.settings"]
        values = {"name": "", "amocrm_url": integrations.DEFAULT_AMOCRM_URL, "token_url": integrations.DEFAULT_TOKEN_URL,
                  "client_id": settings.amocrm_client_id}
        errors = {}
        if request.method == "POST":
            values.update({k: request.form.get(k, "") for k in STEP1_FIELDS})
            try:
                integration = integrations.create_integration(db.session, services(), current_account_id(),
                                                              self._step1_data(request.form))
            except ValidationFailed as exc:
                db.session.rollback()
                errors[exc.field or "name"] = translate(exc)
                if self._wants_json():
                    return jsonify({"error": errors[exc.field or "name"], "field": exc.field}), 422
            else:
                refused = self._refused_before_amocrm(integration)
                if refused is None:
                    db.session.commit()
                    return self._connect_response(integration)
                if self._wants_json():
                    return jsonify(refused), 422
                errors.update({field: "" for field in refused["fields"]}, connect=refused["error"])
        return self.render("admin/cs_integration_new.html", values=values, errors=errors,
                           has_default_secret=bool(settings.amocrm_client_secret)), (422 if errors else 200)

    def _refused_before_amocrm(self, integration: Integration) -> dict | None:
        """A new integration whose connect cannot even start is not kept (no draft): the problem,
        for the form of `new`, or None when amoCRM's consent page is next."""
        try:
            check_connectable(services(), integration)
        except ConnectError as exc:
            problem = self._connect_problem(integration, exc)
            db.session.rollback()
            return problem
        return None

    @expose("/<int:integration_id>/", methods=("GET", "POST"))
    def setup(self, integration_id: int):
        integration = self._get(integration_id)
        if request.method == "GET":
            return self._render_setup(integration)
        return self._save(integration)

    def _save(self, integration: Integration):
        form = request.form
        rows = self._posted_rows(form)
        mapped_names: list[str] = []
        try:
            data = self._settings_data(integration, form, rows, mapped_names)
            integrations.update_integration(db.session, services(), integration, data)
        except (ValidationFailed, FormProblem) as exc:
            db.session.rollback()
            message = exc.message if isinstance(exc, FormProblem) else translate(exc, rows=mapped_names)
            field = exc.field or "form"
            flash(message, "error")
            return self._render_setup(integration, values=self._values_from_form(integration, form),
                                      errors={field: message}, status=422)
        blocked = []
        wants_active = "is_active" in form
        if wants_active != integration.is_active:
            try:
                integrations.update_integration(db.session, services(), integration, {"is_active": wants_active})
            except integrations.ActivationBlocked as exc:
                blocked = [{"text": translate(m), **_activation_target(m)} for m in exc.problems]
        db.session.commit()
        if blocked:
            flash(_("Settings saved, but the integration cannot be activated yet."), "warning")
            values = {**self._values(integration), "is_active": True}  # the tick stays, shown as not applied
            fields = {b["field"]: "" for b in blocked if b["field"]}
            return self._render_setup(integration, values=values, errors=fields, activation_errors=blocked,
                                      activation_refused=True, status=422)
        flash(_("Settings saved.") + (" " + _("The integration is active.") if integration.is_active else ""), "success")
        anchor = "step-7" if integrations.site_script(services(), integration) else None
        return redirect(self._setup_url(integration.id, anchor))

    def _settings_data(self, integration: Integration, form, rows, mapped_names: list[str]) -> dict:
        """Form fields → `update_integration`'s data; `mapped_names` gets the messenger of each mapping."""
        data = self._step1_data(form)
        raw_field = (form.get("session_field") or "").strip()
        if raw_field:
            entity, _sep, rest = raw_field.partition(":")
            field_id, _sep, name = rest.partition(":")
            if entity not in integrations.FIELD_ENTITIES or not field_id.isdigit():
                raise FormProblem("session_field", _("Choose the session custom field from the list."))
            data.update(session_field_entity=entity, session_field_id=int(field_id),
                        session_field_name=name or (integration.session_field_name if integration.session_field_id == int(field_id) else None))
        elif "session_field" in form:
            data.update(session_field_id=None, session_field_name=None)
        traffic_type = form.get("traffic_type") or integration.traffic_type
        data["traffic_type"] = traffic_type
        for key in ("default_campaign_id", "default_source_id", "default_site_id"):
            if key in form:
                data[key] = _int_or_none(form.get(key))
        mappings = []
        for i, origin in rows:
            campaign_id = _int_or_none(form.get(f"map_campaign_id_{i}"))
            source_id = _int_or_none(form.get(f"map_source_id_{i}"))
            site_id = _int_or_none(form.get(f"map_site_id_{i}"))
            if traffic_type == "campaign" and campaign_id:
                item = {"origin": origin, "campaign_id": campaign_id}
            elif traffic_type == "source_site" and (source_id or site_id):
                item = {"origin": origin, "source_id": source_id, "site_id": site_id}
            else:
                continue
            mappings.append(item)
            mapped_names.append(messenger_name(origin, get_translations()))
        data["messenger_mappings"] = mappings
        if "channel_offered" in form:
            data["excluded_channels"] = self._excluded_channels(integration, form)
        if "click_window_minutes" in form:
            data["click_window_minutes"] = self._click_window(form.get("click_window_minutes"))
        return data

    @staticmethod
    def _click_window(raw: str | None) -> int:
        text = (raw or "").strip()
        if not text.isdigit():
            raise FormProblem("click_window_minutes", _("Enter the click window in whole minutes (0 switches it off)."))
        return int(text)

    @expose("/<int:integration_id>/connect", methods=("POST",))
    def connect(self, integration_id: int):
        integration = self._get(integration_id)
        try:
            integrations.update_integration(db.session, services(), integration, self._step1_data(request.form))
        except ValidationFailed as exc:
            db.session.rollback()
            message = translate(exc)
            if self._wants_json():
                return jsonify({"error": message, "field": exc.field}), 422
            return self._render_setup(integration, values=self._values_from_form(integration, request.form),
                                      errors={exc.field or "form": message}, status=422)
        db.session.commit()
        return self._connect_response(integration)

    @expose("/<int:integration_id>/webhook", methods=("POST",))
    def webhook(self, integration_id: int):
        integration = self._get(integration_id)
        if integration.status != "connected":
            flash(_("Connect the amoCRM account first: the webhook is registered through its API."), "error")
            return redirect(self._setup_url(integration.id, "step-2"))
        try:
            register_webhook(services(), integration.id)
            flash(_("The webhook is registered in amoCRM for «Talk changed»."), "success")
            # What closed while the hook was disabled or missing is read from amoCRM's event log now.
            outbox.enqueue_reconcile(integration.id)
        except ReauthRequired:
            flash(_("amoCRM refused our tokens: press «Connect» to connect again."), "error")
        except AmoCrmError as exc:
            flash(_("amoCRM did not register the webhook: %(error)s", error=str(exc)), "error")
        return redirect(self._setup_url(integration.id, "step-2"))

    @expose("/<int:integration_id>/backfill", methods=("POST",))
    def backfill(self, integration_id: int):
        """«Загрузить пропущенные беседы за период»: a backfill from amoCRM's event log, in the background."""
        from web.admin.dashboard_views import zone_name

        integration = self._get(integration_id)
        values = {k: (request.form.get(k) or "").strip() for k in ("date_from", "date_till")}
        try:
            zone = reports.get_zone(zone_name())
            run = reconciliation.start_backfill(
                db.session, current_account_id(), integration.id,
                reports.parse_moment(values["date_from"], "date_from", zone),
                reports.parse_moment(values["date_till"], "date_till", zone, end_of_day=True),
                requested_by=f"admin:{current_user.email}"[:200])
        except (ValidationFailed, reconciliation.NotConnected) as exc:
            db.session.rollback()
            return self._render_setup(integration, backfill_values=values, backfill_problem=self._backfill_problem(exc),
                                      status=422)
        db.session.commit()
        outbox.enqueue_backfill(run.id)
        flash(_("Missed chats are being loaded from amoCRM; the progress is shown below."), "success")
        return redirect(self._setup_url(integration.id, "reconcile"))

    @staticmethod
    def _backfill_problem(exc: Exception) -> str:
        if isinstance(exc, reconciliation.NotConnected):
            if exc.code == "not_active":
                return _("Switch the integration on first (step 6): chats found now would only be ignored.")
            return _("Connect the amoCRM account first: its event log is read through the API.")
        if getattr(exc, "said", None) is not None:
            return say(exc.said)
        return _("Enter the date as 2026-11-24.")

    @expose("/<int:integration_id>/backfills")
    def backfills(self, integration_id: int):
        """The integration's latest backfills as JSON (the page polls it while one runs)."""
        integration = self._get(integration_id)
        return jsonify({"data": reconciliation.list_backfills(db.session, current_account_id(), integration.id)})

    @expose("/<int:integration_id>/webhook/rotate", methods=("POST",))
    def rotate_webhook(self, integration_id: int):
        integration = self._get(integration_id)
        result = rotate_webhook(services(), integration, db.session)
        if result.error:
            flash(_("A new webhook url is issued and the old one no longer works, but amoCRM did not take it: "
                    "%(error)s. Press «Register the webhook in amoCRM» again.", error=result.error), "error")
        elif result.registered:
            flash(_("A new webhook url is issued and registered in amoCRM; the old one no longer works."), "success")
        else:
            flash(_("A new webhook url is issued; the old one no longer works. Put the new url into amoCRM, or connect "
                    "the account: it is registered automatically."), "success")
        return redirect(self._setup_url(integration.id, "step-2"))

    @expose("/<int:integration_id>/disconnect", methods=("POST",))
    def disconnect(self, integration_id: int):
        integration = self._get(integration_id)
        disconnect(db.session, integration)
        db.session.commit()
        flash(_("The amoCRM account is disconnected and the integration is switched off. Chats are no longer recorded."), "success")
        return redirect(self._setup_url(integration.id))

    @expose("/<int:integration_id>/live-check", methods=("POST",))
    def start_live_check(self, integration_id: int):
        """«Проверить на тестовом обращении»: wait for the next chat (the page follows it live)."""
        integration = self._get(integration_id)
        check = live_check.start_check(db.session, current_account_id(), integration.id,
                                       started_by=f"admin:{current_user.email}"[:200])
        db.session.commit()
        return redirect(url_for(".setup", integration_id=integration.id, live_check=check.id) + "#live-check")

    @expose("/<int:integration_id>/live-check/<int:check_id>")
    def live_check_progress(self, integration_id: int, check_id: int):
        """The check's stages as JSON with their HTML (the page polls it every two seconds)."""
        integration = self._get(integration_id)
        try:
            check = live_check.get_check(db.session, current_account_id(), integration.id, check_id)
        except NotFound:
            return jsonify({"error": {"code": "not_found", "message": "no such live check"}}), 404
        view = live_check_view(live_check.check_state(db.session, check), current_locale())
        html = self.render("admin/cs_live_check.html", live=view, integration=integration)
        return jsonify({"status": view["status"], "finished": view["finished"], "html": html,
                        "stages": [{"key": st["key"], "state": st["state"]} for st in view["stages"]]})

    @expose("/<int:integration_id>/delete", methods=("POST",))
    def delete(self, integration_id: int):
        integration = self._get(integration_id)
        removal = delete_integration(db.session, services(), integration)
        if removal.was_draft:
            flash(_("The draft «%(name)s» is deleted.", name=removal.name), "success")
            return redirect(url_for(".index"))
        said = [_("The integration «%(name)s» is deleted; its %(n)s requests stay in the reports.",
                  name=removal.name, n=removal.requests_kept)]
        if removal.webhook_removed:
            said.append(_("Its webhook is removed from amoCRM."))
        elif removal.webhook_error:
            said.append(_("amoCRM did not remove its webhook (%(error)s): delete it by hand in amoCRM → Settings → "
                          "Integrations → Webhooks.", error=removal.webhook_error))
        flash(" ".join(said), "warning" if removal.webhook_error else "success")
        return redirect(url_for(".index"))

    @expose("/<int:integration_id>/check", methods=("POST",))
    def check(self, integration_id: int):
        integration = self._get(integration_id)
        checks = check_integration(db.session, services(), current_account_id(), integration.id)
        db.session.commit()
        return self._render_setup(integration, checks=checks)


def _stage_view(stage, lang: str) -> dict:
    params = dict(stage.params)
    if "channel" in params:
        params["channel"] = channel_label(params["channel"], get_translations())
    if "kind" in params:
        params["kind"] = reports.attribution_label(params["kind"], get_translations())
    if isinstance(params.get("reason"), Message):
        params["reason"] = say(params["reason"])
    return {"key": stage.key, "state": stage.state, "title": _(stage.title),
            "message": _(stage.message, **params) if stage.message else None,
            "fix": _(stage.fix, **params) if stage.fix else None,
            "at": format_moment(stage.at, lang, seconds=True) if stage.at else None}


def live_check_view(state, lang: str) -> dict:
    """A live check's state with its texts in the admin's language, for the template and the JSON."""
    stages = [_stage_view(s, lang) for s in state.stages]
    seen = [s["title"] for s in stages if s["state"] in ("done", "warning")]
    return {
        "id": state.check_id, "status": state.status, "finished": state.finished,
        "needs_fix": any(s["state"] == "failed" for s in stages),
        "started": format_moment(state.started_at, lang, seconds=True),
        "deadline": format_moment(state.deadline, lang),
        "stages": stages, "problems": [_stage_view(p, lang) for p in state.problems],
        "seen": seen, "talk_id": state.talk_id, "request_id": state.request_id,
        "request_url": url_for("requests.index_view", integration_id=state.integration_id,
                               q=state.request_query or None) if state.request_id else None,
        "poll_url": url_for(".live_check_progress", integration_id=state.integration_id, check_id=state.check_id),
    }


def make_views():
    return [IntegrationsView(name=_l("Integrations"), endpoint="integrations", url="integrations")]
