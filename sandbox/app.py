"""Flask app of the amoCRM sandbox: OAuth, API v4 subset, control API, demo page.

``create_sandbox_app(state=None, **settings)`` -> Flask app.  One app = one
amoCRM account.  amo-facing behaviour follows amoCRM's API v4 docs (https://www.amocrm.ru/developers/content/); see
``sandbox/README.md`` for what is a guess.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import time
import uuid
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Flask, Response, g, redirect, render_template_string, request

from .errors import ApiProblem, OAuthError, SandboxError
from .oauth import OAUTH_PROBLEM_TYPE
from .state import SandboxState

MAX_LIMIT = 250
EVENTS_MAX_LIMIT = 100  # the event log pages by at most 100 (RU events-and-notes)
CUSTOM_FIELDS_PAGE_MAX = 50

LOOPBACK_PREFIXES = ("127.", "::1", "::ffff:127.")


def is_loopback(addr: str | None) -> bool:
    """The control API and the demo site answer only clients on this machine."""
    return bool(addr) and (addr == "localhost" or addr.startswith(LOOPBACK_PREFIXES))

RATE_LIMIT_HTML = (
    "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n"
    "<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
BLOCKED_HTML = (
    "<!DOCTYPE html>\n<html lang=\"ru\"><head><meta charset=\"utf-8\"><title>403 Forbidden</title></head>"
    "<body><h1>Доступ запрещён</h1><p>Аккаунт заблокирован за многократное превышение количества запросов "
    "в секунду. Обратитесь в техническую поддержку.</p></body></html>\n"
)


# ------------------------------------------------------------------------------- responses --
def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def hal(data: Any, status: int = 200) -> Response:
    return Response(_dumps(data), status=status, mimetype="application/hal+json")


def empty(status: int = 204) -> Response:
    resp = Response(b"", status=status)
    resp.headers.pop("Content-Type", None)
    return resp


def problem(status: int, detail: str | None = None, title: str | None = None, **extra: Any) -> Response:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body: dict[str, Any] = {}
    if "validation_errors" in extra:
        body["validation-errors"] = [{"request_id": "0", "errors": extra.pop("validation_errors")}]
    body.update({
        "title": title or phrase,
        "type": f"https://httpstatus.es/{status}",
        "status": status,
        "detail": detail if detail is not None else phrase,
    })
    body.update(extra)
    return Response(_dumps(body), status=status, mimetype="application/problem+json")


def oauth_problem(hint: str, status: int) -> Response:
    body = {
        "hint": hint,
        "title": "Некорректный запрос",
        "type": OAUTH_PROBLEM_TYPE,
        "status": status,
        "detail": "В запросе отсутствует ряд параметров или параметры невалидны",
    }
    return Response(_dumps(body), status=status, mimetype="application/problem+json")


def control_json(data: Any, status: int = 200) -> Response:
    return Response(_dumps(data), status=status, mimetype="application/json")


def _is_api_path(path: str) -> bool:
    return path.startswith("/api/v4/") or path == "/api/v4" or path.startswith("/oauth2/")


def _is_control_path(path: str) -> bool:
    return path == "/" or path.startswith(("/_sandbox", "/site"))


_RULE_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _endpoint_key() -> str:
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    return f"{request.method} {_RULE_ARG.sub(lambda m: '{' + m.group(1) + '}', rule)}"


def _path_matches(path: str, patterns: list[str]) -> bool:
    for p in patterns:
        if any(ch in p for ch in "*?["):
            if fnmatch.fnmatchcase(path, p):
                return True
        elif path == p or path.startswith(p):
            return True
    return False


def _with_param() -> set[str]:
    raw = request.args.get("with", "")
    return {w.strip() for w in raw.split(",") if w.strip()}


def _filter_values(name: str) -> list[str] | None:
    """Values of ``filter[name]``, ``filter[name][]`` and ``filter[name][N]``; None when absent."""
    found = False
    values: list[str] = []
    pattern = re.compile(rf"^filter\[{re.escape(name)}\](\[\d*\])?$")
    for key in request.args.keys():
        if pattern.match(key):
            found = True
            values.extend(request.args.getlist(key))
    return values if found else None


def _int_list(name: str, values: list[str]) -> list[int]:
    out = []
    for i, v in enumerate(values):
        try:
            out.append(int(str(v).strip()))
        except ValueError:
            raise ApiProblem("Request validation failed", 400, validation_errors=[
                {"code": "InvalidType", "path": f"filter.{name}.{i}", "detail": "This value should be of type int."}
            ]) from None
    return out


def _limit_page(default_limit: int = 50) -> tuple[int, int]:
    raw_limit = request.args.get("limit")
    raw_page = request.args.get("page")
    try:
        limit = int(raw_limit) if raw_limit not in (None, "") else default_limit
        page = int(raw_page) if raw_page not in (None, "") else 1
    except ValueError:
        raise ApiProblem("Request validation failed", 400, validation_errors=[
            {"code": "InvalidType", "path": "limit" if raw_limit and not raw_limit.lstrip("-").isdigit() else "page",
             "detail": "This value should be of type int."}
        ]) from None
    if limit > MAX_LIMIT:
        raise ApiProblem(f"Limit {MAX_LIMIT} per page", 422)
    if limit < 1:
        raise ApiProblem("Request validation failed", 400, validation_errors=[
            {"code": "GreaterThan", "path": "limit", "detail": "This value should be greater than 0."}])
    return limit, max(page, 1)


def _page_href(state: SandboxState, limit: int, page: int) -> dict[str, str]:
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("page", "limit")]
    args += [("limit", str(limit)), ("page", str(page))]
    return {"href": f"{state.base_url}{request.path}?{urlencode(args)}"}


def _paged(state: SandboxState, rows: list, limit: int, page: int, key: str) -> Response:
    """One page of a list as amoCRM pages it: `_page`, `_links` self/next/prev, 204 past the end."""
    start = (page - 1) * limit
    chunk = rows[start:start + limit]
    if not chunk:
        return empty(204)
    links = {"self": _page_href(state, limit, page)}
    if start + limit < len(rows):
        links["next"] = _page_href(state, limit, page + 1)
    if page > 1:
        links["prev"] = _page_href(state, limit, page - 1)
    return hal({"_page": page, "_links": links, "_embedded": {key: chunk}})


def _add_query(url: str, params: list[tuple[str, str]]) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _json_body(required: bool = True) -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise ApiProblem("Request body is empty", 400)
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiProblem("Invalid JSON body", 400) from None


# ------------------------------------------------------------------------------ the factory --
def create_sandbox_app(state: SandboxState | None = None, **settings: Any) -> Flask:
    """Build the sandbox app.  *state* may be shared (e.g. with :class:`SandboxServer`);
    *settings* are the knobs of ``sandbox.settings.SETTINGS_SCHEMA``."""
    if state is None:
        state = SandboxState(**settings)
    elif settings:
        state.update_settings(settings)
    st = state

    app = Flask("sandbox")
    app.config["SANDBOX_STATE"] = st
    app.extensions["sandbox"] = st
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ request pipeline --
    @app.before_request
    def _pipeline() -> Response | None:
        path = request.path
        if _is_control_path(path):
            if not is_loopback(request.remote_addr) and not st.settings["allow_remote_control"]:
                return control_json({"error": "the control API answers loopback clients only"}, 403)
            st.ensure_host(request.host)
            return None
        st.ensure_host(request.host)
        if not _is_api_path(path):
            return None
        g.sandbox_request_id = uuid.uuid4().hex[:16]
        verdict = st.api_gate(_endpoint_key())
        s = st.settings
        if verdict == "blocked":
            return Response(BLOCKED_HTML, status=403, mimetype="text/html")
        if verdict == "429":
            retry_after = int(s["retry_after"])
            if s["rate_limit_body"] == "html":
                resp = Response(RATE_LIMIT_HTML, status=429, mimetype="text/html")
            else:
                resp = problem(429, "Too many requests per second", "Too Many Requests", retry_after=retry_after)
            resp.headers["Retry-After"] = str(retry_after)
            return resp
        if s["latency_ms"] > 0:
            time.sleep(s["latency_ms"] / 1000.0)
        if s["timeout_paths"] and _path_matches(path, s["timeout_paths"]):
            time.sleep(max(0, s["hang_ms"]) / 1000.0)
        if st.roll_error():
            status = int(s["error_status"])
            return problem(status, trace_id=uuid.uuid4().hex)
        if path.startswith("/api/"):
            auth = request.headers.get("Authorization", "")
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            reason = st.check_access(token)
            if reason is not None:
                return problem(401, reason, "Unauthorized")
            if s["account_unpaid"]:
                return problem(402, "Payment required", "Payment Required")
        return None

    @app.after_request
    def _after(resp: Response) -> Response:
        if _is_api_path(request.path):
            resp.headers["X-Request-Id"] = getattr(g, "sandbox_request_id", None) or uuid.uuid4().hex[:16]
            st.record_status(resp.status_code)
        return resp

    @app.errorhandler(SandboxError)
    def _sandbox_error(exc: SandboxError) -> Response:
        if _is_api_path(request.path):
            return problem(exc.status, exc.message, **exc.extra)
        return control_json({"error": exc.message, **exc.extra}, exc.status)

    @app.errorhandler(404)
    def _not_found(exc: Any) -> Response:
        if _is_api_path(request.path):
            return problem(404)
        if request.path.startswith("/_sandbox"):
            return control_json({"error": "not found"}, 404)
        return Response("<h1>404</h1>", status=404, mimetype="text/html")

    @app.errorhandler(405)
    def _not_allowed(exc: Any) -> Response:
        if _is_api_path(request.path):
            return problem(405)
        return control_json({"error": "method not allowed"}, 405)

    # ------------------------------------------------------------------------------ OAuth --
    from .ui import CONSENT_PAGE, OAUTH_ERROR_PAGE

    @app.route("/oauth", methods=["GET", "POST"])
    @app.route("/oauth/", methods=["GET", "POST"])
    def oauth_authorize() -> Any:
        src = request.form if request.method == "POST" else request.args
        client_id = src.get("client_id", "")
        state_param = src.get("state")
        mode = src.get("mode", "popup")
        client = st.get_client(client_id)
        if client is None:
            html = render_template_string(OAUTH_ERROR_PAGE, client_id=client_id, account=st.get_settings())
            return Response(html, status=400, mimetype="text/html")
        if request.method == "GET" and not st.settings["auto_approve"]:
            html = render_template_string(CONSENT_PAGE, client=client, state=state_param, mode=mode,
                                          account=st.get_settings(), host=st.account_host)
            return Response(html, status=200, mimetype="text/html")
        decision = "allow" if request.method == "GET" else request.form.get("decision", "deny")
        if decision != "allow":
            params = [("error", "access_denied")]
            if state_param:
                params.append(("state", state_param))
            return redirect(_add_query(client["redirect_uri"], params), code=302)
        code = st.issue_code(client_id)
        return redirect(_add_query(client["redirect_uri"], st.redirect_params(client_id, code, state_param)),
                        code=302)

    @app.post("/oauth2/access_token")
    def oauth_token() -> Response:
        params: dict[str, Any] = {}
        raw = request.get_data(cache=True)
        ctype = (request.mimetype or "").lower()
        if ctype == "application/json" or (ctype not in ("application/x-www-form-urlencoded", "multipart/form-data")
                                           and raw.strip().startswith(b"{")):
            try:
                body = json.loads(raw or b"{}")
                params = body if isinstance(body, dict) else {}
            except ValueError:
                params = {}
        else:
            params = request.form.to_dict()
        try:
            tokens = st.token_grant(params)
        except OAuthError as exc:
            # An expired refresh token got HTTP 401 on a live account, the other hints 400 (undocumented).
            status = 401 if exc.hint == "Token has expired" else int(st.settings["oauth_error_status"])
            return oauth_problem(exc.hint, status)
        return Response(_dumps(tokens), status=200, mimetype="application/json")

    @app.get("/oauth2/account/current/subdomain")
    def oauth_subdomain() -> Response:
        info = st.refresh_token_account(request.headers.get("X-Refresh-Token"))
        if info is None:
            return problem(401, "Unauthorized", "Unauthorized")
        return Response(_dumps(info), status=200, mimetype="application/json")

    # ----------------------------------------------------------------------------- API v4 --
    @app.get("/api/v4/account")
    def api_account() -> Response:
        return hal(st.account_json(_with_param()))

    @app.get("/api/v4/talks")
    def api_talks() -> Response:
        # Production code pages with limit=250&page=N; filter[is_in_work] is accepted and ignored,
        # as an integrator reports of live accounts.
        limit, page = _limit_page()
        return _paged(st, st.query_talks(), limit, page, "talks")

    @app.get("/api/v4/talks/<int:id>")
    def api_talk(id: int) -> Response:
        talk = st.get_talk(id)
        if talk is None:
            return problem(404, "Talk not found")
        return hal(talk)

    @app.post("/api/v4/talks/<int:id>/close")
    def api_talk_close(id: int) -> Response:
        body = _json_body(required=False)
        force = False
        if body is not None:
            if not isinstance(body, dict):
                raise ApiProblem("Request validation failed", 400, validation_errors=[
                    {"code": "InvalidType", "path": "", "detail": "This value should be of type object."}])
            force = body.get("force_close", False)
            if not isinstance(force, bool):
                raise ApiProblem("Request validation failed", 400, validation_errors=[
                    {"code": "InvalidType", "path": "force_close", "detail": "This value should be of type bool."}])
        st.close_talk(id, force_close=force)
        return empty(202)

    def _entity_list(entity: str) -> Response:
        limit, page = _limit_page()
        raw_ids = _filter_values("id")
        ids = _int_list("id", raw_ids) if raw_ids is not None else None
        order = None
        for key in ("id", "updated_at", "created_at"):
            direction = request.args.get(f"order[{key}]")
            if direction:
                if direction not in ("asc", "desc") or (entity == "contacts" and key == "created_at"):
                    raise ApiProblem("Request validation failed", 400, validation_errors=[
                        {"code": "NotSupportedChoice", "path": f"order.{key}",
                         "detail": "The value you selected is not a valid choice."}])
                order = (key, direction)
        rows = st.query_entities(entity, ids, request.args.get("query"), order, _with_param())
        start = (page - 1) * limit
        chunk = rows[start:start + limit]
        if not chunk:
            return empty(204)
        links = {"self": _page_href(st, limit, page)}
        if start + limit < len(rows):
            links["next"] = _page_href(st, limit, page + 1)
        if page > 1:
            links["first"] = _page_href(st, limit, 1)
            links["prev"] = _page_href(st, limit, page - 1)
        return hal({"_page": page, "_links": links, "_embedded": {entity: chunk}})

    @app.get("/api/v4/contacts")
    def api_contacts() -> Response:
        return _entity_list("contacts")

    @app.get("/api/v4/leads")
    def api_leads() -> Response:
        return _entity_list("leads")

    @app.get("/api/v4/contacts/<int:id>")
    def api_contact(id: int) -> Response:
        data = st.get_contact(id, _with_param())
        if data is None:
            return empty(204) if st.settings["missing_entity_status"] == 204 else problem(404, "Contact not found")
        return hal(data)

    @app.get("/api/v4/leads/<int:id>")
    def api_lead(id: int) -> Response:
        data = st.get_lead(id, _with_param())
        if data is None:
            return empty(204) if st.settings["missing_entity_status"] == 204 else problem(404, "Lead not found")
        return hal(data)

    def _fields_list(entity: str) -> Response:
        limit, page = _limit_page()
        size = min(limit, CUSTOM_FIELDS_PAGE_MAX)  # "at most 50 per request" whatever limit says
        fields = st.list_fields(entity)
        types = _filter_values("type")
        if types is not None:
            fields = [f for f in fields if f["type"] in set(types)]
        raw_ids = _filter_values("id")
        if raw_ids is not None:
            wanted = set(_int_list("id", raw_ids))
            fields = [f for f in fields if f["id"] in wanted]
        key, direction = "sort", "asc"
        for k in ("sort", "id"):
            d = request.args.get(f"order[{k}]")
            if d in ("asc", "desc"):
                key, direction = k, d
        fields.sort(key=lambda f: (f[key], f["id"]), reverse=direction == "desc")
        total = len(fields)
        page_count = max(1, math.ceil(total / size))
        start = (page - 1) * size
        chunk = fields[start:start + size]
        if not chunk:
            return empty(204)
        links = {"self": _page_href(st, limit, page)}
        if page < page_count:
            links["next"] = _page_href(st, limit, page + 1)
        links["last"] = _page_href(st, limit, page_count)
        with st.lock:
            rendered = [st.field_json(f) for f in chunk]
        return hal({
            "_total_items": total, "_page": page, "_page_count": page_count, "_links": links,
            "_embedded": {"custom_fields": rendered},
        })

    @app.get("/api/v4/leads/custom_fields")
    def api_lead_fields() -> Response:
        return _fields_list("leads")

    @app.get("/api/v4/contacts/custom_fields")
    def api_contact_fields() -> Response:
        return _fields_list("contacts")

    def _field_one(entity: str, id: int) -> Response:
        for f in st.list_fields(entity):
            if f["id"] == id:
                with st.lock:
                    return hal(st.field_json(f))
        return problem(404, "Custom field not found")

    @app.get("/api/v4/leads/custom_fields/<int:id>")
    def api_lead_field(id: int) -> Response:
        return _field_one("leads", id)

    @app.get("/api/v4/contacts/custom_fields/<int:id>")
    def api_contact_field(id: int) -> Response:
        return _field_one("contacts", id)

    @app.get("/api/v4/events")
    def api_events() -> Response:
        raw_limit = request.args.get("limit")
        if raw_limit not in (None, "") and raw_limit.strip().isdigit() and int(raw_limit) > EVENTS_MAX_LIMIT:
            raise ApiProblem(f"Limit {EVENTS_MAX_LIMIT} per page", 422)
        limit, page = _limit_page()
        types = None
        raw_types = _filter_values("type")
        if raw_types is not None:  # filter[type][]=a&filter[type][]=b, or filter[type]=a,b
            types = [t.strip() for v in raw_types for t in v.split(",") if t.strip()]
        bounds = {}
        for edge in ("from", "to"):
            raw = request.args.get(f"filter[created_at][{edge}]")
            if raw in (None, ""):
                continue
            try:
                bounds[edge] = int(raw)
            except ValueError:
                raise ApiProblem("Request validation failed", 400, validation_errors=[
                    {"code": "InvalidType", "path": f"filter.created_at.{edge}",
                     "detail": "This value should be of type int."}]) from None
        rows = st.query_events(types, bounds.get("from"), bounds.get("to"))
        for event in rows:
            event["_links"] = st._link(f"/api/v4/events/{event['id']}")
        return _paged(st, rows, limit, page, "events")

    @app.get("/api/v4/webhooks")
    def api_webhooks() -> Response:
        dest = request.args.get("filter[destination]")
        hooks = st.list_webhooks(dest)
        if not hooks:
            return empty(204)
        return hal({"_total_items": len(hooks), "_embedded": {"webhooks": hooks}})

    @app.post("/api/v4/webhooks")
    def api_webhooks_add() -> Response:
        body = _json_body()
        if not isinstance(body, dict):
            raise ApiProblem("Request validation failed", 400, validation_errors=[
                {"code": "InvalidType", "path": "", "detail": "This value should be of type object."}])
        hook, _created = st.upsert_webhook(body.get("destination"), body.get("settings"), body.get("sort"))
        return hal(hook, 201)

    @app.delete("/api/v4/webhooks")
    def api_webhooks_delete() -> Response:
        body = _json_body()
        if not isinstance(body, dict):
            raise ApiProblem("Request validation failed", 400, validation_errors=[
                {"code": "InvalidType", "path": "", "detail": "This value should be of type object."}])
        if st.delete_webhook(body.get("destination")):
            return empty(204)
        return problem(404, "Webhook not found")

    # -------------------------------------------------------------- control + demo page --
    from .control import register_control
    from .site_demo import register_site_demo
    from .ui import register_ui

    register_control(app, st)
    register_ui(app, st)
    register_site_demo(app, st)
    return app
