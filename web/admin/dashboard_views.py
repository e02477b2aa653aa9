"""The admin's first page: the dashboard — where chats come from, day by day, and whether every
integration is healthy.

Everything it shows comes from `core.reporting.dashboard.build_dashboard` (the same dict as
`GET /api/v1/dashboard`); this module picks the range (7 / 30 / 90 days or any dates), puts colours
on the series, links every warning to the screen that fixes it and every series to the Raw data
report filtered by it, and hands the charts their data as JSON (drawn by Chart.js, served from our
own static files: web/static/vendor/chartjs, web/static/admin/dashboard.js).

The same warnings, with the same links, show on each integration's setup page
(`cs_integration_warnings`, a template global used by admin/cs_dashboard_warnings.html).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from babel.dates import format_date as babel_date
from babel.dates import format_datetime as babel_datetime
from babel.dates import format_timedelta
from babel.numbers import format_decimal
from babel.numbers import format_percent as format_percent_babel
from flask import Flask, current_app, request, url_for
from flask_admin import AdminIndexView, expose
from flask_babel import gettext as _

from core.inbox import event_status, worker_health
from core.inbox.event_status import EventStatus
from core.models import Integration
from core.platform.db import utcnow
from core.platform.errors import ValidationFailed
from core.platform.text import N_
from core.reporting import dashboard
from core.reporting.report import ATTRIBUTIONS, DEFAULT_TZ, get_zone
from web.admin.security import AdminAccess, current_account_id
from web.extensions import db
from web.i18n import current_locale
from web.messages import catalogues, say

RANGE_PRESETS = (7, 30, 90)
DEFAULT_PRESET = 30

# Colours a marketer recognises: each messenger in its brand colour where that stays readable.
CHANNEL_COLORS = {
    "site_chat": "#1565c0", "telegram": "#29a9eb", "whatsapp": "#25d366", "vk": "#4a76a8", "instagram": "#d6249f",
    "viber": "#7360f2", "avito": "#ff6f00", "facebook": "#0d47a1", "tiktok": "#111827", "mercadolibre": "#ffd600",
    "lazada": "#f57224", "other": "#9aa5b1", "unknown": "#c3cbd5",
}
PALETTE = ("#1565c0", "#ef6c00", "#2e7d32", "#8e24aa", "#00838f", "#c62828", "#6d4c41", "#f9a825")
OTHER_COLOR, NONE_COLOR = "#9aa5b1", "#cfd8e3"
ATTRIBUTION_COLORS = {"session": "#2e7d32", "messenger": "#1e88e5", "default": "#f9a825"}




# What to do about each warning: (label msgid, where). `where` is resolved by `_fix_url`.
FIXES = {
    "needs_reauth": [(N_("Connect again"), "setup#step-1")],  # the name of step 1's button
    "webhook_disabled": [(N_("Register the webhook"), "setup#step-2")],
    "webhook_missing": [(N_("Register the webhook"), "setup#step-2")],
    "refresh_token_old": [(N_("Open the integration"), "setup#diagnostics")],
    "backlog": [(N_("Waiting events"), "events:received"), (N_("Check the integration"), "setup#diagnostics")],
    "events_failed": [(N_("Replay the failed events"), "replay:failed"), (N_("Failed events"), "events:failed")],
    "default_spike": [(N_("Requests attributed by default"), "report:default"), (N_("Script for your site"), "setup#step-7")],
    "last_error": [(N_("Check the integration"), "setup#diagnostics")],
}


# --- helpers shared with the report and the integration page -------------------------------------

def zone_name() -> str:
    """The signed-in account's time zone (once per request), else the default."""
    from flask import g, has_request_context
    from flask_login import current_user

    from core.platform.time_zones import account_time_zone

    if not has_request_context() or not getattr(current_user, "is_authenticated", False):
        return DEFAULT_TZ
    if "cs_zone" not in g:
        g.cs_zone = account_time_zone(db.session, current_user.account_id)
    return g.cs_zone


def _something_to_replay() -> bool:
    from web.admin.report_views import something_to_replay

    return something_to_replay()


def to_datetime(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def format_moment(value, lang: str | None = None, *, seconds: bool = False) -> str:
    """A UTC moment as local time of the account (Europe/Moscow): 24.11.2026 10:15 / 2026-11-24 10:15."""
    moment = to_datetime(value)
    if moment is None:
        return "—"
    local = moment.astimezone(get_zone(zone_name()))
    lang = lang or current_locale()
    pattern = ("%Y-%m-%d %H:%M" if lang == "en" else "%d.%m.%Y %H:%M") + (":%S" if seconds else "")
    return local.strftime(pattern)


def format_ago(value, now: datetime | None = None, lang: str | None = None) -> str:
    moment = to_datetime(value)
    if moment is None:
        return ""
    delta = moment - (now or utcnow())
    return format_timedelta(delta, threshold=1.1, add_direction=True, format="long", locale=lang or current_locale())


def format_full(value, lang: str | None = None) -> str:
    moment = to_datetime(value)
    if moment is None:
        return ""
    return babel_datetime(moment, "medium", tzinfo=get_zone(zone_name()), locale=lang or current_locale())


def events_url(status: str | None = None, integration_id: int | None = None) -> str:
    """The webhook events list filtered by status and integration, with Flask-Admin's own filter args."""
    from web.admin.event_views import IntegrationFilter, StatusFilter

    view = next((v for v in _admin_views() if getattr(v, "endpoint", None) == "events"), None)
    args = {}
    if view is not None:
        wanted = [(StatusFilter, status), (IntegrationFilter, integration_id)]
        position = 0
        for cls, value in wanted:
            if value is None:
                continue
            for index, flt in enumerate(view._filters or []):
                if isinstance(flt, cls):
                    args[f"flt{position}_{view.get_filter_arg(index, flt)}"] = value
                    position += 1
                    break
    return url_for("events.index_view", **args)


def _admin_views():
    from flask import current_app

    admin = current_app.extensions.get("chatsource.admin")
    return admin._views if admin is not None else []


def _fix_url(where: str, warning: dict, date_from: str | None, date_till: str | None) -> str:
    iid = warning.get("integration_id")
    if where.startswith("setup"):
        anchor = where.partition("#")[2]
        return url_for("integrations.setup", integration_id=iid) + (f"#{anchor}" if anchor else "")
    kind, _sep, value = where.partition(":")
    if kind == "events":
        return events_url(value, iid)
    if kind == "replay":
        return url_for("replay.index", integration_id=iid, statuses=value)
    if kind == "report":
        return url_for("requests.index_view", integration_id=iid, attribution=value, date_from=date_from, date_till=date_till)
    raise ValueError(where)  # pragma: no cover - FIXES holds only the kinds above


def prepare_warnings(warnings: list[dict], lang: str, date_from: str | None = None, date_till: str | None = None) -> list[dict]:
    """core's warnings in the admin's language, each with the links that fix it."""
    result = []
    for w in warnings:
        result.append({
            **w,
            "text": say(dashboard.MESSAGES[w["code"]](name=w["integration_name"] or "", **w["params"])),
            "fixes": [{"label": _(label), "url": _fix_url(where, w, date_from, date_till)}
                      for label, where in FIXES.get(w["code"], [])],
        })
    return result


def _processing(account_id: int):
    """Is a worker consuming this account's waiting events (the «worker not running» alarm)?"""
    return worker_health.processing_state(db.session, current_app.extensions["chatsource.services"].redis, account_id)


def integration_warnings_for_page(integration_id: int) -> list[dict]:
    """The warnings of one integration of the signed-in account (its setup page)."""
    account_id = current_account_id()
    warnings = dashboard.integration_warnings(db.session, account_id, integration_id, processing=_processing(account_id))
    today = datetime.now(get_zone(zone_name())).date()
    week_ago = today - timedelta(days=dashboard.INTEGRATION_SPIKE_DAYS - 1)
    return prepare_warnings([w.to_dict(catalogues()) for w in warnings], current_locale(), week_ago.isoformat(), today.isoformat())


def format_number(value, lang: str | None = None) -> str:
    return format_decimal(value or 0, locale=lang or current_locale())


def format_percent(value, lang: str | None = None) -> str:
    """45.3 → «45,3 %» (Russian) or «45.3%»; None → «—»."""
    if value is None:
        return "—"
    return format_percent_babel(value / 100, "#,##0.#%", locale=lang or current_locale())


def format_day(value, lang: str | None = None) -> str:
    """2026-11-24 → 24.11.2026 (Russian) or Nov 24, 2026 (English)."""
    day = value if isinstance(value, date) else date.fromisoformat(str(value))
    return babel_date(day, "medium" if (lang or current_locale()) == "en" else "dd.MM.yyyy", locale=lang or current_locale())


def install(app: Flask) -> None:
    app.add_template_global(integration_warnings_for_page, "cs_integration_warnings")
    app.add_template_filter(format_number, "cs_number")
    app.add_template_filter(format_day, "cs_day")
    app.add_template_filter(format_percent, "cs_percent")
    app.add_template_filter(format_moment, "cs_moment")
    app.add_template_filter(format_ago, "cs_ago")
    app.add_template_filter(format_full, "cs_moment_full")
    app.add_template_global(zone_name, "cs_zone_name")
    app.add_template_global(_something_to_replay, "cs_something_to_replay")


# --- the dashboard --------------------------------------------------------------------------------

def _range_problem(exc: ValidationFailed) -> str:
    if exc.field == "days":
        return _("Choose 7, 30 or 90 days, or enter the dates.")
    if exc.said is not None:
        return say(exc.said)
    if exc.field == "integration_id":
        return _("Choose the integration from the list.")
    return _("Enter the dates as 2026-11-24.")


def _colored(series: list[dict], colors: dict | None = None) -> list[dict]:
    result = []
    for n, s in enumerate(series):
        if s["key"] == "other":
            color = OTHER_COLOR
        elif s["key"] == "none":
            color = NONE_COLOR
        elif colors is not None:
            color = colors.get(s["key"], PALETTE[n % len(PALETTE)])
        else:
            color = PALETTE[n % len(PALETTE)]
        result.append({**s, "color": color})
    return result


def _percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


class DashboardView(AdminAccess, AdminIndexView):
    """`/admin/`: requests per day by channel and by campaign / source, the attribution shares, the
    integrations' health and the warnings."""

    def _integrations(self, account_id: int) -> list[tuple[int, str]]:
        return [(row.id, row.name) for row in db.session.execute(
            sa.select(Integration.id, Integration.name).where(Integration.account_id == account_id).order_by(Integration.id))]

    def _choose_range(self, args, zone) -> tuple[str | None, str | None, int | None]:
        """(date_from, date_till, preset): the preset days ending today, or the dates given."""
        today = datetime.now(zone).date()
        raw_days = (args.get("days") or "").strip()
        if args.get("date_from") or args.get("date_till"):
            if raw_days:
                raise ValidationFailed("give days or dates, not both", "days")
            return args.get("date_from") or None, args.get("date_till") or None, None
        days = DEFAULT_PRESET
        if raw_days:
            if not raw_days.isdigit() or int(raw_days) not in RANGE_PRESETS:
                raise ValidationFailed("days must be 7, 30 or 90", "days")
            days = int(raw_days)
        return (today - timedelta(days=days - 1)).isoformat(), today.isoformat(), days

    @expose("/")
    def index(self):
        account_id = current_account_id()
        lang = current_locale()
        zone = get_zone(zone_name())
        integrations = self._integrations(account_id)
        problem, status = None, 200
        integration_id = None
        try:
            raw_integration = (request.args.get("integration_id") or "").strip()
            if raw_integration:
                if not raw_integration.isdigit() or int(raw_integration) not in {i for i, _n in integrations}:
                    raise ValidationFailed("unknown integration", "integration_id")
                integration_id = int(raw_integration)
            date_from, date_till, preset = self._choose_range(request.args, zone)
            data = dashboard.build_dashboard(db.session, account_id, date_from, date_till, tz=zone.key,
                                             integration_id=integration_id, lang=lang, catalogues=catalogues(), processing=_processing(account_id))
        except ValidationFailed as exc:
            db.session.rollback()
            problem, status, integration_id = _range_problem(exc), 400, None
            date_from, date_till, preset = self._choose_range({}, zone)
            data = dashboard.build_dashboard(db.session, account_id, date_from, date_till, tz=zone.key, lang=lang, catalogues=catalogues(),
                                             processing=_processing(account_id))
        return self.render("admin/cs_dashboard.html", **self._context(data, lang, preset, integration_id, integrations,
                                                                       problem)), status

    def _context(self, data: dict, lang: str, preset: int | None, integration_id: int | None,
                 integrations: list[tuple[int, str]], problem: str | None) -> dict:
        rng = data["range"]
        report_args = {"date_from": rng["date_from"], "date_till": rng["date_till"]}
        if integration_id:
            report_args["integration_id"] = integration_id

        def report_url(**more):
            return url_for("requests.index_view", **report_args, **more)

        by_channel = _colored(data["by_channel"], CHANNEL_COLORS)
        by_campaign = _colored(data["by_campaign"])
        by_source = _colored(data["by_source"])
        for s in by_channel:
            s["url"] = report_url(channel=s["key"]) if s["key"] != "other" else None
        for kind, series in (("campaign_id", by_campaign), ("source_id", by_source)):
            for s in series:
                s["url"] = report_url(**{kind: s["key"]}) if s["key"] != "other" else None

        att = data["attribution"]
        attribution = []
        for key in ATTRIBUTIONS:
            share = att["shares"][key] if att["total"] else None
            before = att["previous"]["shares"][key] if att["previous"]["total"] else None
            attribution.append({
                "key": key, "label": att["labels"][key], "count": att["counts"][key], "color": ATTRIBUTION_COLORS[key],
                "percent": _percent(share), "previous_percent": _percent(before),
                "change": (round((share - before) * 100, 1) if share is not None and before is not None else None),
                "url": report_url(attribution=key),
            })
        per_day_total = [sum(att["per_day"][k][i] for k in ATTRIBUTIONS) for i in range(len(data["days"]))]
        session_share = [round(att["per_day"]["session"][i] / t * 100, 1) if t else None for i, t in enumerate(per_day_total)]

        total, previous_total = data["total"], att["previous"]["total"]
        chart = {
            "locale": lang,
            "days": data["days"],
            "channel": [{"label": s["label"], "color": s["color"], "data": s["per_day"]} for s in by_channel],
            "campaign": [{"label": s["label"], "color": s["color"], "data": s["per_day"]} for s in by_campaign],
            "source": [{"label": s["label"], "color": s["color"], "data": s["per_day"]} for s in by_source],
            "attribution": [{"label": a["label"], "color": a["color"], "count": a["count"]} for a in attribution],
            "session_share": session_share,
            "session_share_previous": attribution[0]["previous_percent"],
            "session_percent": attribution[0]["percent"],
            "text": {
                "requests": _("Requests"),
                "total": _("Total"),
                "session_share": _("Session share"),
                "previous_period": _("Previous period"),
                "of_requests": _("of requests"),
                "no_requests": _("No requests that day"),
            },
        }
        health = []
        now = utcnow()
        for h in data["integrations"]:
            pending = sum(h["backlog"][s] for s in event_status.PENDING)
            health.append({**h, "pending": pending, "setup_url": url_for("integrations.setup", integration_id=h["id"]),
                           "events_url": events_url(None, h["id"]),
                           "failed_url": events_url(EventStatus.FAILED, h["id"]), "parked_url": events_url(EventStatus.PARKED, h["id"]),
                           "pending_url": events_url(EventStatus.RECEIVED, h["id"])})
        first_run = integration_id is None and (not data["integrations"] or all(h["last_request_at"] is None for h in data["integrations"]))
        return dict(
            data=data, chart=chart, problem=problem, preset=preset, presets=RANGE_PRESETS, integration_id=integration_id,
            integrations=integrations, warnings=prepare_warnings(data["warnings"], lang, rng["date_from"], rng["date_till"]),
            by_channel=by_channel, by_campaign=by_campaign, by_source=by_source, attribution=attribution,
            total=total, previous_total=previous_total,
            total_change=(round((total - previous_total) / previous_total * 100) if previous_total else None),
            health=health, now=now, first_run=first_run, tz_name=zone_name(), report_url=report_url(),
            lang=lang, warn_days=dashboard.REFRESH_TOKEN_WARN_DAYS,
        )
