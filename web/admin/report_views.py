"""«Сырые данные → Обращения и цели» (Raw data → Requests and goals) and «Повтор событий» (replay by filter).

The Raw data report is a flat table of requests with every column: filters (period, integration,
channel, ad campaign, source, site, attribution), a search by phone, e-mail or name, sorting by any
column header, pages, and a CSV export of every matching row. It is a thin screen over
`core.reporting.report` and `core.reporting.csv_export` — the same `RequestFilter`, `Sort`, `page_requests` and `iter_requests_csv` as
`GET /api/v1/requests` and `/api/v1/requests.csv`, with the same query parameters — so the screen,
the CSV and the Data API always agree. Pages after the first are reached by keyset (`cursor`), so
«next» stays quick however deep a million-row account is paged.

The replay page sends failed or parked webhook events of an integration and a period round again
(`core.inbox.replay.replay_by_filter`) and shows each run's progress, refreshing while it runs.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import current_app, flash, jsonify, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_babel import get_translations, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from core.amocrm import messengers
from core.inbox import event_status, repeat_requests, replay
from core.models import Campaign, Integration, Site, Source
from core.platform.errors import NotFound, ValidationFailed
from core.platform.text import N_
from core.reporting import csv_export, dashboard, report_columns
from core.reporting import report as reports
from web.admin.dashboard_views import format_moment, zone_name
from web.admin.security import AdminAccess, current_account_id
from web.csv_export import requests_csv_response
from web.extensions import db
from web.i18n import current_locale
from web.messages import say
from workers import outbox

FILTER_FIELDS = ("date_from", "date_till", "integration_id", "channel", "campaign_id", "source_id", "site_id",
                 "attribution", "q", "is_repeat")
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE = 1_000_000
CSV_DELIMITERS = ("comma", "semicolon")




# The table's columns: (key, header msgid or a literal, sort key of core.reporting.report.SORTS or None).
COLUMNS = (
    ("created_at", N_("Date and time"), "created_at"),
    ("channel", N_("Channel"), "channel"),
    ("contact_name", N_("Contact name"), "contact_name"),
    ("phone", N_("Phone"), "phone"),
    ("email", N_("E-mail"), "email"),
    ("site", N_("Site"), "site"),
    ("campaign", N_("Ad campaign"), "campaign"),
    ("attribution", N_("Attribution"), "attribution"),  # beside the campaign it explains
    ("source", N_("Source"), "source"),
    ("utm_source", "utm_source", None),
    ("utm_medium", "utm_medium", None),
    ("utm_campaign", "utm_campaign", None),
    ("utm_term", "utm_term", None),
    ("utm_content", "utm_content", None),
    ("referrer", N_("Referrer"), None),
    ("entrance_page", N_("Entrance page"), None),
    ("session_id", N_("Session ID"), None),
    ("is_repeat", N_("New or repeat"), None),
    ("integration", N_("Integration"), "integration"),
    ("amocrm", "amoCRM", "talk_id"),
)
# Every column but the first (the date stays first and shown) can be hidden and moved, per user.
CHOOSABLE_COLUMNS = tuple(key for key, _header, _sort in COLUMNS[1:])
LITERAL_HEADERS = {"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "amocrm"}
DESCENDING_FIRST = {"created_at", "id", "talk_id"}

FIELD_PROBLEMS = {
    "integration_id": N_("Choose the integration from the list."),
    "campaign_id": N_("Choose the ad campaign from the list."),
    "source_id": N_("Choose the source from the list."),
    "site_id": N_("Choose the site from the list."),
    "channel": N_("Choose the channel from the list."),
    "attribution": N_("Choose the attribution from the list."),
    "is_repeat": N_("Choose new or repeat requests from the list."),
    "sort": N_("The table cannot be sorted that way; press a column header instead."),
    "page": N_("The page number must be a whole number from 1."),
    "per_page": N_("Show 25, 50, 100 or 200 rows per page."),
    "delimiter": N_("The CSV separator must be a comma or a semicolon."),
    "statuses": N_("Choose at least one status: failed, parked, ignored or skipped."),
}


def problem_text(exc: ValidationFailed) -> str:
    """core's (English) reason for refusing a filter, in the admin's language."""
    if exc.said is not None:
        return say(exc.said)
    field = exc.field or ""
    if field in ("date_from", "date_till"):
        return _("Enter the date as 2026-11-24.")
    if field == "q":
        return _("The search contains control characters; type it again.")
    return _(FIELD_PROBLEMS[field]) if field in FIELD_PROBLEMS else exc.message


def services():
    return current_app.extensions["chatsource.services"]


def first_requests_of(rows, lang: str) -> dict[int, dict]:
    """The first requests the page's repeat ones point at: their time, and a link to the contact's
    requests (searched by phone, e-mail or name, whichever the first request has)."""
    from core.models import ChatRequest

    ids = {r.first_request_id for r in rows if r.first_request_id}
    if not ids:
        return {}
    found = db.session.scalars(sa.select(ChatRequest).where(ChatRequest.id.in_(ids))).all()
    return {r.id: {"when": format_moment(r.created_at, lang),
                   "url": url_for(".index_view", q=r.phone or r.email or r.contact_name) if (r.phone or r.email or r.contact_name) else None}
            for r in found}


def repeat_panel(account_id: int) -> dict:
    """The repeat window and the progress of its last recompute, for the report's settings strip."""
    run = repeat_requests.latest_run(db.session, account_id)
    return {"window_days": repeat_requests.window_days(db.session, account_id),
            "run": repeat_requests.run_to_dict(run) if run else None,
            "min": repeat_requests.MIN_WINDOW_DAYS, "max": repeat_requests.MAX_WINDOW_DAYS}


def own_choices(account_id: int) -> dict:
    """The account's integrations, sites, campaigns and sources for the filter lists."""
    def rows(model, *order):
        return db.session.execute(sa.select(model).where(model.account_id == account_id).order_by(*order)).scalars().all()

    sites = rows(Site, Site.name)
    site_names = {s.id: s.name for s in sites}
    return {
        "integrations": [(i.id, i.name) for i in rows(Integration, Integration.id)],
        "sites": [(s.id, s.name) for s in sites],
        "campaigns": [(c.id, f"{c.name} ({site_names[c.site_id]})" if c.site_id in site_names else c.name)
                      for c in rows(Campaign, Campaign.name)],
        "sources": [(s.id, s.name) for s in rows(Source, Source.name)],
    }


class RequestsReportView(AdminAccess, BaseView):
    """`/admin/requests/`: the Raw data report; `/admin/requests/export.csv`: its CSV."""

    @staticmethod
    def _args() -> dict:
        """The report's parameters as given (empty ones dropped), for links that keep them."""
        keep = FILTER_FIELDS + ("sort", "per_page")
        return {k: request.args.get(k) for k in keep if (request.args.get(k) or "").strip()}

    @staticmethod
    def _parse(args):
        zone = reports.get_zone(zone_name())
        flt = reports.RequestFilter.from_params(args, zone)
        sort = reports.Sort.parse(args.get("sort") or None)
        return flt, sort, zone

    @staticmethod
    def _paging(args) -> tuple[int, int]:
        raw_size = (args.get("per_page") or "").strip()
        if raw_size and (not raw_size.isdigit() or int(raw_size) not in PAGE_SIZES):
            raise ValidationFailed("per_page", "per_page")
        raw_page = (args.get("page") or "").strip()
        if raw_page and (not raw_page.isdigit() or not 1 <= int(raw_page) <= MAX_PAGE):
            raise ValidationFailed("page", "page")
        return int(raw_page or 1), int(raw_size or DEFAULT_PAGE_SIZE)

    def _url(self, base: dict, **changes) -> str:
        args = {**base, **changes}
        return url_for(".index_view", **{k: v for k, v in args.items() if v not in (None, "")})

    @expose("/")
    def index_view(self):
        account_id = current_account_id()
        lang = current_locale()
        args = self._args()
        problem = problem_field = None
        page_no, per_page = 1, DEFAULT_PAGE_SIZE
        sort = reports.Sort.parse(None)
        result = reports.RequestPage([], 0)
        try:
            flt, sort, zone = self._parse(request.args)
            page_no, per_page = self._paging(request.args)
            cursor = (request.args.get("cursor") or "").strip() or None
            try:
                result = reports.page_requests(db.session, account_id, flt, sort, limit=per_page,
                                               offset=(page_no - 1) * per_page, cursor=cursor if page_no > 1 else None)
            except ValidationFailed as exc:
                if exc.field != "cursor":
                    raise
                # A cursor from another sort or a mangled link: the same page by its number.
                result = reports.page_requests(db.session, account_id, flt, sort, limit=per_page, offset=(page_no - 1) * per_page)
        except ValidationFailed as exc:
            db.session.rollback()
            problem, problem_field = problem_text(exc), exc.field
        rows = [self._row(r, result.refs, lang) for r in result.rows]
        total = result.total or 0
        pages = max(math.ceil(total / per_page), 1)
        context = dict(
            rows=rows, total=total, page_no=page_no, per_page=per_page, pages=pages, page_sizes=PAGE_SIZES,
            first_row=(page_no - 1) * per_page + 1 if rows else 0, last_row=(page_no - 1) * per_page + len(rows),
            next_url=self._url(args, page=page_no + 1, cursor=result.next_cursor) if result.next_cursor else None,
            prev_url=self._url(args, page=page_no - 1) if page_no > 1 else None,
            page_urls=[(n, self._url(args, page=n if n > 1 else None)) for n in range(max(page_no - 2, 1), min(page_no + 2, pages) + 1)],
            first_url=self._url(args), columns=self._columns(args, sort), args=args, sort=str(sort),
            problem=problem, problem_field=problem_field, choices=own_choices(account_id),
            channels=[(k, messengers.channel_label(k, get_translations())) for k in messengers.CHANNEL_LABELS if k != "unknown"],
            attributions=[(k, reports.attribution_label(k, get_translations())) for k in reports.ATTRIBUTIONS],
            repeat_choices=[("false", _("New")), ("true", _("Repeat"))],
            first_requests=first_requests_of(result.rows, lang),
            repeat=repeat_panel(account_id),
            presets=self._presets(args), tz_name=zone_name(),
            csv_urls={d: url_for(".export_csv", **{k: v for k, v in args.items() if k != "per_page"}, lang=lang, delimiter=d)
                      for d in CSV_DELIMITERS},
            api_query=urlencode({k: v for k, v in args.items() if k != "per_page"}),
            filtered=any(k in args for k in FILTER_FIELDS),
            column_choice=report_columns.column_choice(db.session, account_id, current_user.id, CHOOSABLE_COLUMNS),
        )
        return self.render("admin/cs_report.html", **context), (400 if problem else 200)

    @expose("/columns", methods=("POST",))
    def save_columns(self):
        """The columns the signed-in user hid and their order (JSON `{"order", "hidden"}`, CSRF token in
        X-CSRFToken): kept on their own user row, so another browser shows the same columns."""
        try:
            stored = report_columns.save_column_choice(db.session, current_account_id(), current_user.id,
                                                       request.get_json(silent=True), CHOOSABLE_COLUMNS)
        except ValidationFailed as exc:
            db.session.rollback()
            return jsonify({"error": {"code": "bad_columns", "message": exc.message}}), 400
        db.session.commit()
        return jsonify({"data": stored})

    def _presets(self, args: dict) -> list[tuple[str, str, bool]]:
        today = datetime.now(reports.get_zone(zone_name())).date()
        result = []
        for label, start, end in ((_("Today"), today, today), (_("Yesterday"), today - timedelta(days=1), today - timedelta(days=1)),
                                  (_("7 days"), today - timedelta(days=6), today), (_("30 days"), today - timedelta(days=29), today),
                                  (_("All time"), None, None)):
            chosen = args.get("date_from") == (start.isoformat() if start else None) and \
                args.get("date_till") == (end.isoformat() if end else None)
            url = self._url(args, date_from=start.isoformat() if start else None, date_till=end.isoformat() if end else None)
            result.append((label, url, chosen))
        return result

    def _columns(self, args: dict, sort: reports.Sort) -> list[dict]:
        columns = []
        for key, header, sort_key in COLUMNS:
            column = {"key": key, "label": header if key in LITERAL_HEADERS else _(header), "url": None, "arrow": ""}
            if sort_key:
                if sort.key == sort_key:
                    column["arrow"] = "▼" if sort.descending else "▲"
                    next_sort = sort_key if sort.descending else f"-{sort_key}"
                else:
                    next_sort = f"-{sort_key}" if sort_key in DESCENDING_FIRST else sort_key
                column["url"] = self._url(args, sort=next_sort if next_sort != reports.DEFAULT_SORT else None)
                column["sorted"] = sort.key == sort_key
            columns.append(column)
        return columns

    @staticmethod
    def _row(row, refs, lang: str) -> dict:
        translations = get_translations()
        data = reports.request_to_dict(row, refs, translations)
        data.update(
            created_local=format_moment(row.created_at, lang, seconds=True),
            closed_local=format_moment(row.closed_at, lang, seconds=True) if row.closed_at else None,
            channel_label=messengers.channel_label(row.channel, translations),
            attribution_label=reports.attribution_label(row.attribution, translations),
        )
        return data

    @expose("/repeat-window", methods=("POST",))
    def repeat_window(self):
        """«Период повторности»: save the window; a worker recomputes the flags (progress below)."""
        account_id = current_account_id()
        try:
            days = repeat_requests.parse_window(request.form.get("repeat_window_days"))
            run = repeat_requests.change_window(db.session, account_id, days, requested_by=f"admin:{current_user.email}"[:200])
        except ValidationFailed:
            db.session.rollback()
            flash(_("The repeat window is a whole number of days from %(min)s to %(max)s.",
                    min=repeat_requests.MIN_WINDOW_DAYS, max=repeat_requests.MAX_WINDOW_DAYS), "error")
            return redirect(url_for(".index_view"))
        db.session.commit()
        if run is None:
            flash(_("The repeat window is already %(days)s days.", days=days), "info")
        else:
            outbox.enqueue_repeat_recompute(run.id)
            flash(_("The repeat window is now %(days)s days; repeat requests are being recomputed.", days=days), "success")
        return redirect(url_for(".index_view"))

    @expose("/repeat-window/progress")
    def repeat_progress(self):
        """The last recompute's progress as JSON (the report polls it while it runs)."""
        run = repeat_requests.latest_run(db.session, current_account_id())
        return jsonify({"data": repeat_requests.run_to_dict(run) if run else None})

    @expose("/export.csv")
    def export_csv(self):
        """Every matching row, streamed: the same rows, columns and safety as GET /api/v1/requests.csv."""
        account_id = current_account_id()
        try:
            flt, sort, zone = self._parse(request.args)
            delimiter = request.args.get("delimiter") or "comma"
            if delimiter not in csv_export.DELIMITERS or csv_export.DELIMITERS[delimiter] not in (",", ";"):
                raise ValidationFailed("delimiter", "delimiter")
        except ValidationFailed as exc:
            if exc.field == "delimiter":
                flash(problem_text(exc), "error")
            page, _status = self.index_view()  # the report, saying what is wrong with the filter
            return page, 400
        lang = request.args.get("lang") if request.args.get("lang") in csv_export.LANGS else current_locale()
        session_factory = services().session_factory

        return requests_csv_response(session_factory, account_id, flt, sort=sort, lang=lang, zone=zone,
                                     delimiter=delimiter)


# --- replay by filter ------------------------------------------------------------------------------

REPLAY_STATUSES = event_status.REPLAYABLE


def something_to_replay() -> bool:
    """Whether the signed-in account has an event to replay or a run to follow (once per request)."""
    from flask import g

    if not current_user.is_authenticated:
        return False
    if "cs_replay_visible" not in g:  # the menu and the dashboard ask on the same page
        g.cs_replay_visible = replay.has_something_to_replay(db.session, current_account_id())
    return g.cs_replay_visible


class ReplayView(AdminAccess, BaseView):
    """`/admin/replay/`: replay failed or parked events by integration, period and status; progress.
    In the menu only when there is something to replay (or a run to follow); the page stays reachable."""

    def is_visible(self):
        return something_to_replay()

    def _form_values(self, source) -> dict:
        statuses = source.getlist("statuses") if hasattr(source, "getlist") else []
        if len(statuses) == 1 and "," in statuses[0]:
            statuses = statuses[0].split(",")
        return {
            "integration_id": (source.get("integration_id") or "").strip(),
            "date_from": (source.get("date_from") or "").strip(),
            "date_till": (source.get("date_till") or "").strip(),
            "statuses": [s for s in statuses if s in REPLAY_STATUSES] or list(event_status.DEFAULT_REPLAY),
        }

    def _render(self, values: dict, problem: str | None = None, problem_field: str | None = None, status: int = 200,
                highlight: int | None = None):
        from web.admin.event_views import STATUS_LABELS

        account_id = current_account_id()
        names = dict(own_choices(account_id)["integrations"])
        runs = replay.list_replay_runs(db.session, account_id)
        for run in runs:
            iid = run["filter"]["integration_id"]
            run["integration_name"] = names.get(iid, f"#{iid}") if iid else None
        health = dashboard.integration_health(db.session, account_id)
        return self.render(
            "admin/cs_report_replay.html", values=values, problem=problem, problem_field=problem_field, runs=runs,
            highlight=highlight, integrations=list(names.items()), health=health,
            statuses=[(s, _(STATUS_LABELS[s])) for s in REPLAY_STATUSES], status_labels=STATUS_LABELS,
            format_moment=format_moment, tz_name=zone_name(),
        ), status

    @expose("/", methods=("GET", "POST"))
    def index(self):
        if request.method == "GET":
            highlight = request.args.get("run")
            return self._render(self._form_values(request.args), highlight=int(highlight) if (highlight or "").isdigit() else None)
        values = self._form_values(request.form)
        values["statuses"] = [s for s in request.form.getlist("statuses")]
        try:
            result = self._replay(values)
        except ValidationFailed as exc:
            db.session.rollback()
            if exc.field == "statuses" or not values["statuses"]:
                values["statuses"] = values["statuses"] or []
            return self._render(values, problem_text(exc), exc.field, status=422)
        db.session.commit()
        outbox.enqueue_talk_events(result.to_enqueue)
        if result.queued:
            flash(ngettext("%(num)s event was queued again.", "%(num)s events were queued again.", result.queued), "success")
        else:
            flash(_("No event matches the filter: nothing to replay."), "warning")
        skipped = result.skipped
        if skipped:
            flash(_("Left as they are: %(not_closed)s of unfinished chats, %(needs_reauth)s of integrations waiting for "
                    "reconnection (reconnecting replays them), %(inactive)s of switched-off integrations.",
                    not_closed=skipped.get("not_closed", 0), needs_reauth=skipped.get("needs_reauth", 0),
                    inactive=skipped.get("integration_inactive", 0)), "info")
        return redirect(url_for(".index", run=result.run_id) if result.run_id else url_for(".index"))

    def _replay(self, values: dict):
        account_id = current_account_id()
        statuses = values["statuses"]
        if not statuses or any(s not in REPLAY_STATUSES for s in statuses):
            raise ValidationFailed("statuses", "statuses")
        raw = values["integration_id"]
        if raw and not raw.isdigit():
            raise ValidationFailed("integration_id", "integration_id")
        zone = reports.get_zone(zone_name())
        date_from = reports.parse_moment(values["date_from"], "date_from", zone)
        date_till = reports.parse_moment(values["date_till"], "date_till", zone, end_of_day=True)
        return replay.replay_by_filter(db.session, account_id, int(raw) if raw else None, date_from, date_till,
                                            statuses, requested_by=f"admin:{current_user.email}"[:200])

    @expose("/progress")
    def progress(self):
        """The runs' progress as JSON (the page polls it while a run is under way)."""
        account_id = current_account_id()
        raw = (request.args.get("ids") or "").strip()
        ids = [int(i) for i in raw.split(",") if i.strip().isdigit()][:50] if raw else []
        if raw and not ids:
            return jsonify({"error": {"code": "bad_parameter", "message": "ids must be run numbers separated by commas"}}), 400
        if not ids:
            return jsonify({"data": replay.list_replay_runs(db.session, account_id)})
        data = []
        for run_id in ids:
            try:
                data.append(replay.replay_progress(db.session, account_id, run_id))
            except NotFound:
                continue  # another account's run, or gone: simply not listed
        return jsonify({"data": data})


def make_views():
    category = _l("Raw data")
    return [
        RequestsReportView(name=_l("Requests and goals"), endpoint="requests", url="requests", category=category),
    ]


def make_replay_views():
    return [ReplayView(name=_l("Replay events"), endpoint="replay", url="replay", category=_l("Raw data"))]
