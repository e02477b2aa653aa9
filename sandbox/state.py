"""One emulated amoCRM account: the stores it is made of, behind one lock, and its public API.

Everything the HTTP layer (``sandbox.app``) does goes through :class:`SandboxState`, so tests and
the demo may also drive it directly from Python.  The state lives in stores with one job each,
all guarding their data with the same ``threading.RLock`` (so an operation that spans stores is
atomic):

========================  =====================================================================
``state.account``         knobs, clock, ids and URLs, ``GET /api/v4/account``  (``sandbox.account``)
``state.traffic``         the 403 block, the rate window, the call statistics  (``sandbox.traffic``)
``state.oauth``           apps, codes, tokens, refresh, expiry, revocation     (``sandbox.oauth``)
``state.custom_fields``   lead and contact custom fields and their values      (``sandbox.fields``)
``state.event_log``       the event log                                        (``sandbox.events``)
``state.crm``             contacts, leads, talks                               (``sandbox.crm``)
``state.hooks``           hooks, deliveries, the disable rule, the queue       (``sandbox.webhooks``)
========================  =====================================================================

This module does what crosses stores (reset, knobs that touch several, a talk's change and its
webhook) and re-exposes the stores' public names, so ``state.close_talk(...)`` or
``state.settings`` read as before.  Network I/O (webhook delivery) never happens under the lock.
"""

from __future__ import annotations

import threading
from typing import Any

from . import settings as knobs
from .account import AccountStore
from .crm import CrmStore
from .errors import SandboxError
from .events import EventLog
from .fields import FieldStore
from .oauth import OAuthStore
from .traffic import TrafficStore
from .webhooks import WebhookStore


class _Via:
    """``name = _Via("store")`` in :class:`SandboxState`: ``state.name`` is ``state.store.name``
    (a method, a property or a dict; looked up on each access, so a reset's new dicts are seen)."""

    def __init__(self, store: str) -> None:
        self.store = store

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return getattr(getattr(obj, self.store), self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(getattr(obj, self.store), self.name, value)


class SandboxState:
    """One amoCRM account: OAuth apps and tokens, CRM entities, webhooks, knobs, stats."""

    def __init__(self, **settings: Any) -> None:
        self.lock = threading.RLock()
        self._startup_settings = knobs.merge(knobs.defaults(), settings)
        self.account = AccountStore(self.lock)
        self.traffic = TrafficStore(self.lock, self.account)
        self.oauth = OAuthStore(self.lock, self.account, self.traffic)
        self.custom_fields = FieldStore(self.lock, self.account)
        self.event_log = EventLog(self.lock, self.account)
        self.crm = CrmStore(self.lock, self.account, self.custom_fields, self.event_log)
        self.hooks = WebhookStore(self.lock, self.account, self.traffic)
        with self.lock:
            self._reset_locked(self._startup_settings)

    # ------------------------------------------------------------------ across the stores --
    def _reset_locked(self, settings: dict[str, Any]) -> None:
        self.account.reset_locked(settings)
        self.traffic.reset_locked()
        self.oauth.reset_locked()
        self.custom_fields.reset_locked()
        self.event_log.reset_locked()
        self.crm.reset_locked()
        self.hooks.reset_locked()
        s = self.account.settings
        if s.get("client_id") and s.get("client_secret") and s.get("redirect_uri"):
            self.oauth.register_locked(s["client_id"], s["client_secret"], s["redirect_uri"], s.get("client_name"))
        if s.get("seed") == "demo":
            from .seed import seed_demo_locked

            seed_demo_locked(self.crm)

    def reset(self, keep_settings: bool = False) -> None:
        with self.lock:
            settings = self.account.settings if keep_settings else self._startup_settings
            settings = dict(settings, blocked=False)
            self._reset_locked(settings)

    def update_settings(self, updates: dict[str, Any]) -> dict[str, Any]:
        """``POST /_sandbox/settings``: knobs; the client's knobs register it, ``revoke`` revokes every token."""
        updates = dict(updates)
        revoke = updates.pop("revoke", None)
        with self.lock:
            new = self.account.merge_settings_locked(updates)
            if "blocked" in updates and not new["blocked"]:
                self.traffic.forget_429s_locked()
            if {"client_id", "client_secret", "redirect_uri"} & set(updates) and all(
                    new.get(k) for k in ("client_id", "client_secret", "redirect_uri")):
                self.oauth.register_locked(new["client_id"], new["client_secret"], new["redirect_uri"],
                                           new.get("client_name"))
            if revoke and knobs._as_bool("revoke", revoke):
                self.oauth.revoke_locked(None)
            return self.account.get_settings()

    def create_chat(self, contact: dict[str, Any] | None = None, lead: Any = ..., origin: str = "telegram",
                    entity_type: str | None = "lead", contact_id: int | None = None,
                    lead_id: int | None = None, chat_id: str | None = None, is_read: bool = False,
                    created_at: int | None = None, notify: bool = True) -> dict[str, Any]:
        """Contact (+ lead) + open talk (see :meth:`CrmStore.start_chat`), then the ``add_talk`` webhook."""
        result, snapshot = self.crm.start_chat(contact, lead, origin, entity_type, contact_id, lead_id, chat_id,
                                               is_read, created_at)
        result["deliveries"] = self.hooks.emit_talk_event("add_talk", [snapshot]) if notify else []
        result["talk"] = snapshot
        return result

    def close_talk(self, talk_id: int, force_close: bool = False, control: bool = False) -> dict[str, Any]:
        """POST /api/v4/talks/{id}/close.  Returns ``{"status": "closed"|"closing", "talk", "deliveries"}``."""
        status, snapshot = self.crm.finish_talk(talk_id, force_close, control)
        deliveries = self.hooks.emit_talk_event("update_talk", [snapshot]) if status == "closed" else []
        return {"status": status, "talk": snapshot, "deliveries": deliveries}

    def read_talk(self, talk_id: int) -> dict[str, Any]:
        snapshot, changed = self.crm.mark_read(talk_id)
        return {"talk": snapshot, "deliveries": self.hooks.emit_talk_event("update_talk", [snapshot]) if changed
                else []}

    def rate_talk(self, talk_id: int, rate: int) -> dict[str, Any]:
        """The NPS bot got a rating: set ``rate``; a talk that was closing closes."""
        snapshot = self.crm.set_rate(talk_id, rate)
        return {"talk": snapshot, "deliveries": self.hooks.emit_talk_event("update_talk", [snapshot])}

    def send_talk_events(self, event: str = "update_talk", talk_ids: list[Any] | None = None,
                         talks: list[dict[str, Any]] | None = None, destination: str | None = None,
                         times: int = 1) -> list[dict[str, Any]]:
        """Control: (re)send the current state of *talk_ids* (and/or arbitrary *talks*) in ONE body."""
        items = self.crm.talk_snapshots(talk_ids or [])
        for extra in talks or []:
            if not isinstance(extra, dict):
                raise SandboxError("talks must be objects")
            base = next((i for i in items if i["talk_id"] == extra.get("talk_id")), None)
            if base is not None:
                base.update(extra)
            else:
                items.append(dict(extra))
        if not items:
            raise SandboxError("give talk_ids and/or talks")
        if times < 1 or times > 1000:
            raise SandboxError("times must be within 1..1000")
        return self.hooks.emit_talk_event(event, items, destination=destination, times=times)

    # ------------------------------------------------------------- the stores' public names --
    # account: knobs, clock, identity, faults
    settings = _Via("account")
    rng = _Via("account")
    now = _Via("account")
    now_f = _Via("account")
    advance_clock = _Via("account")
    get_settings = _Via("account")
    roll_error = _Via("account")
    ensure_host = _Via("account")
    account_host = _Via("account")
    base_url = _Via("account")
    account_ref = _Via("account")
    account_json = _Via("account")
    amojo_id = _Via("account")
    created_at = _Via("account")

    def _link(self, path: str) -> dict[str, Any]:
        return self.account.link(path)

    # traffic: gate and statistics
    stats = _Via("traffic")
    api_gate = _Via("traffic")
    record_status = _Via("traffic")
    unblock = _Via("traffic")
    reset_stats = _Via("traffic")
    get_stats = _Via("traffic")

    # oauth
    clients = _Via("oauth")
    codes = _Via("oauth")
    access_tokens = _Via("oauth")
    refresh_tokens = _Via("oauth")
    register_client = _Via("oauth")
    get_client = _Via("oauth")
    list_clients = _Via("oauth")
    issue_code = _Via("oauth")
    redirect_params = _Via("oauth")
    token_grant = _Via("oauth")
    check_access = _Via("oauth")
    refresh_token_account = _Via("oauth")
    revoke = _Via("oauth")

    # custom fields
    fields = _Via("custom_fields")
    add_custom_field = _Via("custom_fields")
    list_fields = _Via("custom_fields")
    field_json = _Via("custom_fields")
    cf_json = _Via("custom_fields")

    # crm: contacts, leads, talks
    contacts = _Via("crm")
    leads = _Via("crm")
    talks = _Via("crm")
    add_contact = _Via("crm")
    add_lead = _Via("crm")
    update_lead_fields = _Via("crm")
    contact_json = _Via("crm")
    lead_json = _Via("crm")
    get_contact = _Via("crm")
    get_lead = _Via("crm")
    query_entities = _Via("crm")
    talk_json = _Via("crm")
    query_talks = _Via("crm")
    get_talk = _Via("crm")
    list_talks = _Via("crm")

    # event log
    events = _Via("event_log")
    add_event = _Via("event_log")
    query_events = _Via("event_log")

    # webhooks
    webhooks = _Via("hooks")
    deliverer = _Via("hooks")
    deliveries = _Via("hooks")
    webhook_json = _Via("hooks")
    list_webhooks = _Via("hooks")
    upsert_webhook = _Via("hooks")
    delete_webhook = _Via("hooks")
    set_webhook_disabled = _Via("hooks")
    set_all_webhooks_disabled = _Via("hooks")
    emit_talk_event = _Via("hooks")
    list_deliveries = _Via("hooks")
    clear_deliveries = _Via("hooks")
