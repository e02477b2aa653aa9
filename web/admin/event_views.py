"""The webhook inbox (read-only, with «replay» of the selected events and a way to replay by filter).
The requests it made are the Raw data report (web/admin/report_views.py)."""
from __future__ import annotations

import json

from flask import flash, g, has_request_context
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_babel import get_translations, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup

from core.amocrm.messengers import messenger_name
from core.inbox import replay
from core.inbox.event_status import EventStatus
from core.models import Campaign, Integration, Site, VisitorSession, WebhookEvent
from core.platform.text import N_
from core.reporting.report import EVENT_STATUSES
from web.admin.date_filters import day_filters
from web.admin.security import AccountScopedModelView, current_account_id
from web.extensions import db
from web.messages import say
from workers import outbox

STATUS_LABELS = {
    EventStatus.RECEIVED: N_("waiting"),
    EventStatus.PROCESSING: N_("processing"),
    EventStatus.DONE: N_("done"),
    EventStatus.SKIPPED: N_("skipped (chat not finished)"),
    EventStatus.IGNORED: N_("ignored (integration or channel off)"),
    EventStatus.PARKED: N_("parked (reconnect amoCRM)"),
    EventStatus.FAILED: N_("failed"),
}
STATUS_BADGES = {EventStatus.DONE: "success", EventStatus.FAILED: "danger", EventStatus.PARKED: "warning",
                 EventStatus.IGNORED: "secondary", EventStatus.SKIPPED: "light", EventStatus.RECEIVED: "info",
                 EventStatus.PROCESSING: "info"}


def _own_integrations():
    rows = db.session.query(Integration.id, Integration.name).filter(Integration.account_id == current_account_id()).order_by(Integration.id)
    return [(str(i), name) for i, name in rows]


class _NamesCache:
    """Names of the integrations/campaigns/… on the current page, fetched once per request."""

    @staticmethod
    def get(model, id_):
        cache = g.setdefault("_cs_names", {})
        if model not in cache:
            cache[model] = dict(db.session.query(model.id, model.name).filter(model.account_id == current_account_id()).all())
        return cache[model].get(id_)


def _integration_name(view, context, model, name):
    return _NamesCache.get(Integration, model.integration_id) or f"#{model.integration_id}"


def _status(view, context, model, name):
    label = _(STATUS_LABELS.get(model.status, model.status))
    return Markup('<span class="badge badge-{}" data-status="{}">{}</span>').format(STATUS_BADGES.get(model.status, "light"), model.status, label)


def _origin(view, context, model, name):
    origin = (model.item or {}).get("origin") if isinstance(model, WebhookEvent) else model.origin
    return messenger_name(origin, get_translations()) if origin else "—"


# What amoCRM's talk[...] key says happened, in words.
ACTION_LABELS = {"add": N_("talk started"), "update": N_("talk changed"), "delete": N_("talk deleted")}


def _action(view, context, model, name):
    return _(ACTION_LABELS[model.action]) if model.action in ACTION_LABELS else model.action


def _status_reason(view, context, model, name):
    return say(model.status_message)


def _error(view, context, model, name):
    text = model.error or ""
    if not text:
        return ""
    return Markup('<span class="text-danger small" title="{}">{}</span>').format(text, text[:200] + ("…" if len(text) > 200 else ""))


def _item(view, context, model, name):
    return Markup("<pre class='small mb-0'>{}</pre>").format(json.dumps(model.item, ensure_ascii=False, indent=2, sort_keys=True))


class RequestOptionsFilter(FilterEqual):
    """A select filter whose options depend on the request (the account, the language): Flask-Admin
    caches options when the view is built, so `ReadOnlyView` fills them in per request."""

    def get_options(self, view):
        return self.request_options() if has_request_context() and current_user.is_authenticated else None

    def request_options(self) -> list:  # pragma: no cover - every subclass implements it
        raise NotImplementedError


class StatusFilter(RequestOptionsFilter):
    def request_options(self):
        return [(s, _(STATUS_LABELS[s])) for s in EVENT_STATUSES]


class IntegrationFilter(RequestOptionsFilter):
    def request_options(self):
        return _own_integrations()

    def clean(self, value):
        try:
            return int(value)
        except (TypeError, ValueError):
            return -1


class ReadOnlyView(AccountScopedModelView):
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True

    def _get_filter_groups(self):
        groups = super()._get_filter_groups()
        for items in (groups or {}).values():
            for item in items:
                flt = self._filters[item["index"]]
                if isinstance(flt, RequestOptionsFilter):
                    item["options"] = [(k, str(v)) for k, v in flt.get_options(self) or []]
        return groups


class WebhookEventView(ReadOnlyView):
    list_template = "admin/cs_report_events_list.html"
    column_list = ("received_at", "integration_id", "talk_id", "action", "origin", "status", "status_reason_code", "attempts", "error", "request_id")
    column_details_list = ("id", "received_at", "integration_id", "talk_id", "action", "origin", "status", "status_reason_code",
                           "attempts", "error", "processed_at", "request_id", "item")
    column_default_sort = ("id", True)
    column_sortable_list = ("received_at", "talk_id", "status", "attempts")
    column_filters = [
        StatusFilter(WebhookEvent.status, _l("Status")),
        IntegrationFilter(WebhookEvent.integration_id, _l("Integration")),
        *day_filters(WebhookEvent.received_at, _l("Received")),
    ]
    column_labels = {
        "id": "ID", "received_at": _l("Received"), "integration_id": _l("Integration"), "talk_id": _l("Talk"),
        "action": _l("Action"), "origin": _l("Messenger"), "status": _l("Status"), "status_reason_code": _l("Reason"),
        "attempts": _l("Attempts"), "error": _l("Error"), "processed_at": _l("Processed"), "request_id": _l("Request"),
        "item": _l("Data from amoCRM"),
    }
    column_formatters = {"integration_id": _integration_name, "status": _status, "origin": _origin, "error": _error, "item": _item,
                         "action": _action, "status_reason_code": _status_reason}

    @action("replay", _l("Replay"), _l("Process the selected events again? A chat already recorded is not recorded twice."))
    def action_replay(self, ids):
        try:
            event_ids = [int(i) for i in ids]
        except ValueError:
            flash(_("Nothing to replay."), "error")
            return
        result = replay.replay_by_filter(db.session, current_account_id(), event_ids=event_ids)
        db.session.commit()
        outbox.enqueue_talk_events(result.to_enqueue)
        if result.queued:
            flash(ngettext("%(num)s event was queued again.", "%(num)s events were queued again.", result.queued), "success")
        waiting = result.skipped.get("needs_reauth", 0) + result.skipped.get("integration_inactive", 0)
        skipped = len(event_ids) - result.queued - waiting
        if skipped:
            flash(ngettext("%(num)s event cannot be replayed: only a finished chat that is not being processed can.",
                           "%(num)s events cannot be replayed: only finished chats that are not being processed can.", skipped), "warning")
        if waiting:
            flash(ngettext("%(num)s event was left as it is: its integration waits for reconnection (reconnecting "
                           "replays it) or is switched off.",
                           "%(num)s events were left as they are: their integration waits for reconnection "
                           "(reconnecting replays them) or is switched off.", waiting), "warning")


class SiteFilter(RequestOptionsFilter):
    def request_options(self):
        rows = db.session.query(Site.id, Site.name).filter(Site.account_id == current_account_id()).order_by(Site.name)
        return [(str(i), name) for i, name in rows]


class CampaignFilter(RequestOptionsFilter):
    def request_options(self):
        rows = db.session.query(Campaign.id, Campaign.name).filter(Campaign.account_id == current_account_id()).order_by(Campaign.name)
        return [(str(i), name) for i, name in rows]


def _site_name(view, context, model, name):
    return _NamesCache.get(Site, model.site_id) or f"#{model.site_id}"


def _campaign_name(view, context, model, name):
    return (_NamesCache.get(Campaign, model.campaign_id) or f"#{model.campaign_id}") if model.campaign_id else "—"


class VisitorSessionView(ReadOnlyView):
    """«Сессии»: what the tracking code recorded, looked up by id (the number in amoCRM's session
    field) or filtered by site, campaign, channel and time. Read-only."""

    column_list = ("id", "started_at", "last_activity_at", "site_id", "channel", "campaign_id", "utm_source",
                   "utm_campaign", "entrance_page", "page_views", "device")
    column_details_list = ("id", "started_at", "last_activity_at", "site_id", "visitor_id", "channel", "campaign_id",
                           "entrance_page", "entrance_title", "referrer", "search_engine", "search_query", "utm_source",
                           "utm_medium", "utm_campaign", "utm_term", "utm_content", "page_views", "device", "browser")
    column_default_sort = ("id", True)
    column_sortable_list = ("id", "started_at", "last_activity_at", "page_views")
    column_searchable_list = ("visitor_id", "utm_campaign", "entrance_page")
    column_filters = [
        FilterEqual(VisitorSession.id, _l("Session ID")),
        SiteFilter(VisitorSession.site_id, _l("Site")),
        CampaignFilter(VisitorSession.campaign_id, _l("Ad campaign")),
        FilterEqual(VisitorSession.channel, _l("Channel")),
        FilterEqual(VisitorSession.utm_source, "utm_source"),
        *day_filters(VisitorSession.started_at, _l("Started")),
    ]
    column_labels = {
        "id": _l("Session ID"), "started_at": _l("Started"), "last_activity_at": _l("Last activity"), "site_id": _l("Site"),
        "visitor_id": _l("Visitor ID"), "channel": _l("Channel"), "campaign_id": _l("Ad campaign"),
        "entrance_page": _l("Entrance page"), "entrance_title": _l("Entrance page title"), "referrer": _l("Referrer"),
        "search_engine": _l("Search engine"), "search_query": _l("Search query"), "page_views": _l("Page views"),
        "device": _l("Device"), "browser": _l("Browser"),
    }
    column_formatters = {"site_id": _site_name, "campaign_id": _campaign_name}


def make_views():
    return [
        WebhookEventView(WebhookEvent, name=_l("Webhook events"), endpoint="events", category=_l("Raw data")),
        VisitorSessionView(VisitorSession, name=_l("Sessions"), endpoint="sessions", category=_l("Raw data")),
    ]
