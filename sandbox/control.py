"""Control API for tests and the demo: ``/_sandbox/*``, JSON in/out, no auth, loopback only."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, request

from .errors import SandboxError
from .settings import SETTINGS_SCHEMA, SettingsError
from .state import SandboxState


def _ok(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status=status, mimetype="application/json")


def _body() -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise SandboxError("body must be JSON") from None
    if not isinstance(data, dict):
        raise SandboxError("body must be a JSON object")
    return data


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SandboxError(f"{name} must be an integer") from None


def register_control(app: Flask, st: SandboxState) -> None:
    P = "/_sandbox"

    @app.post(f"{P}/reset")
    def ctl_reset() -> Response:
        body = _body()
        st.reset(keep_settings=bool(body.get("keep_settings")))
        return _ok({"ok": True, "settings": st.get_settings()})

    @app.get(f"{P}/settings")
    def ctl_settings_get() -> Response:
        return _ok(st.get_settings())

    @app.get(f"{P}/settings/schema")
    def ctl_settings_schema() -> Response:
        return _ok({k: {"type": v[0], "default": v[1], "help": v[2]} for k, v in SETTINGS_SCHEMA.items()})

    @app.post(f"{P}/settings")
    def ctl_settings_set() -> Response:
        try:
            return _ok(st.update_settings(_body()))
        except SettingsError as exc:
            raise SandboxError(str(exc)) from None

    @app.get(f"{P}/clients")
    def ctl_clients() -> Response:
        return _ok({"clients": st.list_clients()})

    @app.post(f"{P}/clients")
    def ctl_clients_add() -> Response:
        b = _body()
        client = st.register_client(b.get("client_id"), b.get("client_secret"), b.get("redirect_uri"), b.get("name"))
        return _ok(client, 201)

    @app.post(f"{P}/oauth/codes")
    def ctl_code() -> Response:
        """Skip the consent page: a fresh authorization code and the redirect URL amo would send."""
        b = _body()
        client = st.get_client(b.get("client_id"))
        if client is None:
            raise SandboxError("unknown client_id", 404)
        code = st.issue_code(client["client_id"])
        params = st.redirect_params(client["client_id"], code, b.get("state"))
        from .app import _add_query

        return _ok({"code": code, "referer": st.account_host,
                    "redirect_url": _add_query(client["redirect_uri"], params)}, 201)

    @app.post(f"{P}/revoke")
    def ctl_revoke() -> Response:
        b = _body()
        return _ok({"revoked_access_tokens": st.revoke(b.get("client_id"))})

    @app.post(f"{P}/unblock")
    def ctl_unblock() -> Response:
        st.unblock()
        return _ok({"ok": True})

    @app.post(f"{P}/clock")
    def ctl_clock() -> Response:
        b = _body()
        try:
            seconds = float(b.get("advance", 0))
        except (TypeError, ValueError):
            raise SandboxError("advance must be a number of seconds") from None
        return _ok({"clock_offset": st.advance_clock(seconds), "now": st.now()})

    # ------------------------------------------------------------------------ entities --
    @app.get(f"{P}/custom_fields")
    def ctl_fields() -> Response:
        entity = request.args.get("entity", "leads")
        if entity not in ("leads", "contacts"):
            raise SandboxError("entity must be 'leads' or 'contacts'")
        with st.lock:
            return _ok({"custom_fields": [st.field_json(f) for f in st.fields[entity]]})

    @app.post(f"{P}/custom_fields")
    def ctl_fields_add() -> Response:
        b = _body()
        field = st.add_custom_field(b.get("entity", ""), b.get("name", ""), b.get("type", "text"), b.get("code"),
                                    b.get("enums"), b.get("sort"), bool(b.get("is_api_only", False)))
        with st.lock:
            return _ok(st.field_json(field), 201)

    @app.get(f"{P}/contacts")
    def ctl_contacts() -> Response:
        return _ok({"contacts": st.query_entities("contacts", None, None, None, {"leads"})})

    @app.post(f"{P}/contacts")
    def ctl_contacts_add() -> Response:
        b = _body()
        return _ok(st.add_contact(b.get("name"), b.get("phones"), b.get("emails"), b.get("custom_fields")), 201)

    @app.get(f"{P}/leads")
    def ctl_leads() -> Response:
        return _ok({"leads": st.query_entities("leads", None, None, None, {"contacts"})})

    @app.post(f"{P}/leads")
    def ctl_leads_add() -> Response:
        b = _body()
        contact_id = b.get("contact_id")
        lead = st.add_lead(b.get("name"), _int(contact_id, "contact_id") if contact_id is not None else None,
                           b.get("custom_fields"), b.get("price", 0) or 0)
        return _ok(lead, 201)

    @app.post(f"{P}/leads/<int:lead_id>/custom_fields")
    def ctl_lead_fields(lead_id: int) -> Response:
        return _ok(st.update_lead_fields(lead_id, _body().get("custom_fields")))

    @app.post(f"{P}/chats")
    def ctl_chats() -> Response:
        b = _body()
        kwargs: dict[str, Any] = {
            "contact": b.get("contact") or {},
            "origin": b.get("origin", "telegram"),
            "entity_type": b.get("entity_type", "lead"),
            "is_read": bool(b.get("is_read", False)),
            "notify": bool(b.get("notify", True)),
        }
        if "lead" in b:
            kwargs["lead"] = b["lead"]
        for key in ("contact_id", "lead_id", "created_at"):
            if b.get(key) is not None:
                kwargs[key] = _int(b[key], key)
        if b.get("chat_id"):
            kwargs["chat_id"] = str(b["chat_id"])
        if kwargs["contact"] and not isinstance(kwargs["contact"], dict):
            raise SandboxError("contact must be an object")
        return _ok(st.create_chat(**kwargs), 201)

    @app.get(f"{P}/talks")
    def ctl_talks() -> Response:
        return _ok({"talks": st.list_talks()})

    @app.get(f"{P}/talks/<int:talk_id>")
    def ctl_talk(talk_id: int) -> Response:
        talk = st.get_talk(talk_id)
        if talk is None:
            raise SandboxError("talk not found", 404)
        return _ok(talk)

    @app.post(f"{P}/talks/<int:talk_id>/close")
    def ctl_talk_close(talk_id: int) -> Response:
        return _ok(st.close_talk(talk_id, force_close=True, control=True))

    @app.post(f"{P}/talks/<int:talk_id>/read")
    def ctl_talk_read(talk_id: int) -> Response:
        return _ok(st.read_talk(talk_id))

    @app.post(f"{P}/talks/<int:talk_id>/rate")
    def ctl_talk_rate(talk_id: int) -> Response:
        return _ok(st.rate_talk(talk_id, _int(_body().get("rate", 0), "rate")))

    # ------------------------------------------------------------------------ webhooks --
    @app.get(f"{P}/webhooks")
    def ctl_webhooks() -> Response:
        return _ok({"webhooks": st.list_webhooks(internal=True)})

    @app.post(f"{P}/webhooks/<int:hook_id>/disable")
    def ctl_webhook_disable(hook_id: int) -> Response:
        return _ok(st.set_webhook_disabled(hook_id, True))

    @app.post(f"{P}/webhooks/<int:hook_id>/enable")
    def ctl_webhook_enable(hook_id: int) -> Response:
        return _ok(st.set_webhook_disabled(hook_id, False))

    @app.post(f"{P}/webhooks/disable")
    def ctl_webhooks_disable_all() -> Response:
        """Every hook disabled, as amoCRM does after 100 bad answers: no webhook is delivered."""
        return _ok({"webhooks": st.set_all_webhooks_disabled(True)})

    @app.post(f"{P}/webhooks/enable")
    def ctl_webhooks_enable_all() -> Response:
        return _ok({"webhooks": st.set_all_webhooks_disabled(False)})

    @app.post(f"{P}/webhooks/send")
    def ctl_webhooks_send() -> Response:
        b = _body()
        talk_ids = b.get("talk_ids") or []
        if not isinstance(talk_ids, list):
            raise SandboxError("talk_ids must be a list")
        deliveries = st.send_talk_events(
            event=b.get("event", "update_talk"), talk_ids=talk_ids, talks=b.get("talks"),
            destination=b.get("destination"), times=_int(b.get("times", 1), "times"),
        )
        return _ok({"deliveries": deliveries})

    @app.get(f"{P}/deliveries")
    def ctl_deliveries() -> Response:
        if request.args.get("wait"):
            st.deliverer.wait(float(request.args.get("wait") or 5))
        since = _int(request.args.get("since_id", 0), "since_id")
        return _ok({"deliveries": st.list_deliveries(request.args.get("destination"), request.args.get("event"),
                                                     since)})

    @app.post(f"{P}/deliveries/clear")
    def ctl_deliveries_clear() -> Response:
        st.clear_deliveries()
        return _ok({"ok": True})

    # ----------------------------------------------------------------------- event log --
    @app.get(f"{P}/events")
    def ctl_events() -> Response:
        return _ok({"events": st.query_events()})

    @app.post(f"{P}/events")
    def ctl_events_add() -> Response:
        """Add an event of any shape (tests: a talk_closed carrying its talk id elsewhere, or not at all)."""
        return _ok(st.add_event(_body()), 201)

    # --------------------------------------------------------------------------- stats --
    @app.get(f"{P}/stats")
    def ctl_stats() -> Response:
        return _ok(st.get_stats())

    @app.post(f"{P}/stats/reset")
    def ctl_stats_reset() -> Response:
        st.reset_stats()
        return _ok(st.get_stats())
