"""In-memory state of one emulated amoCRM account, guarded by one lock.

Everything the HTTP layer (``sandbox.app``) does goes through :class:`SandboxState`,
so tests and the demo may also drive it directly from Python.  Network I/O
(webhook delivery) never happens while the lock is held.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import secrets
import threading
import time
import uuid
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from . import settings as knobs
from .delivery import Deliverer
from .errors import ApiProblem, OAuthError, SandboxError
from .webhook_format import EVENT_TO_KEY, encode_body, encode_talk_events

# --- amoCRM constants ----------------------------------------------------------------------

#: Webhook events accepted by POST /api/v4/webhooks (amoCRM's list, https://www.amocrm.ru/developers/content/crm_platform/webhooks-api,
#: plus the ones Kommo's UI offers).
KNOWN_EVENTS: tuple[str, ...] = tuple(
    [f"add_{e}" for e in ("lead", "contact", "company", "customer", "talk", "task")]
    + [f"update_{e}" for e in ("lead", "contact", "company", "customer", "talk", "task")]
    + [f"delete_{e}" for e in ("lead", "contact", "company", "customer", "task")]
    + [f"restore_{e}" for e in ("lead", "contact", "company")]
    + [f"responsible_{e}" for e in ("lead", "contact", "company", "customer", "task")]
    + [f"note_{e}" for e in ("lead", "contact", "company", "customer")]
    + ["status_lead", "add_chat_template_review"]
    + ["add_message", "add_unsorted", "update_unsorted", "delete_unsorted", "delete_talk"]
)

#: Custom field types (PHP CustomFieldModel).
FIELD_TYPES: tuple[str, ...] = (
    "text", "numeric", "checkbox", "select", "multiselect", "multitext", "date", "url", "textarea",
    "radiobutton", "streetaddress", "smart_address", "birthday", "legal_entity", "date_time", "items",
    "category", "price", "tracking_data", "linked_entity", "org_legal_name", "monetary", "chained_list",
    "file", "payer", "supplier",
)
ENUM_TYPES = {"select", "multiselect", "radiobutton", "multitext"}

PHONE_ENUMS = ("WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER")
EMAIL_ENUMS = ("WORK", "PRIV", "OTHER")

#: tracking_data fields seen in a real account export.
TRACKING_FIELDS = (
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_referrer",
    "referrer", "gclid", "yclid", "fbclid", "roistat", "_ym_uid", "_ym_counter",
    "openstat_service", "openstat_campaign", "openstat_ad", "openstat_source", "from", "gclientid",
)

#: Chat origins offered by the demo page (https://www.amocrm.ru/developers/content/crm_platform/talks-api;
#: site chat / VK / Viber / Avito codes unknown).
KNOWN_ORIGINS = (
    "telegram", "waba", "com.amocrm.amocrmwa", "amochats.whatsapp", "instagram_business", "facebook",
    "tiktok-kommo", "mercado-libre", "lazada-integration",
)

OAUTH_PROBLEM_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"

PIPELINE_ID = 7012345
FIRST_STATUS_ID = 61234567
MAX_DELIVERIES_KEPT = 5000

LOOPBACK_PREFIXES = ("127.", "::1", "::ffff:127.")


def is_loopback(addr: str | None) -> bool:
    return bool(addr) and (addr == "localhost" or addr.startswith(LOOPBACK_PREFIXES))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SandboxState:
    """One amoCRM account: OAuth apps and tokens, CRM entities, webhooks, knobs, stats."""

    def __init__(self, **settings: Any) -> None:
        self.lock = threading.RLock()
        self._startup_settings = knobs.merge(knobs.defaults(), settings)
        self.deliverer = Deliverer(self)
        self._jwt_key = secrets.token_bytes(32)
        with self.lock:
            self._reset_locked(self._startup_settings)

    # ------------------------------------------------------------------------------ basics --
    def _reset_locked(self, settings: dict[str, Any]) -> None:
        host = getattr(self, "settings", {}).get("account_host") if hasattr(self, "settings") else None
        self.settings: dict[str, Any] = copy.deepcopy(settings)
        if self.settings.get("account_host") is None and host:
            # keep the host the server is bound to across resets
            self.settings["account_host"] = host
        self.rng = random.Random(self.settings["random_seed"])
        self.amojo_id = str(uuid.UUID(int=self.settings["account_id"] * 7919 + 1))
        self.created_at = self.now()
        self.clients: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.fields: dict[str, list[dict[str, Any]]] = {"leads": [], "contacts": []}
        self.contacts: dict[int, dict[str, Any]] = {}
        self.leads: dict[int, dict[str, Any]] = {}
        self.talks: dict[int, dict[str, Any]] = {}
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self._ids = {
            "field": 845001, "enum": 1650001, "contact": 21000001, "lead": 32000001,
            "talk": 101, "webhook": 1100001, "delivery": 1,
        }
        self._rate_window: deque[float] = deque()
        self._count_429_for_block = 0
        self._reset_stats_locked()
        self.deliverer.cancel_pending()
        self._seed_fields_locked()
        s = self.settings
        if s.get("client_id") and s.get("client_secret") and s.get("redirect_uri"):
            self._register_client_locked(s["client_id"], s["client_secret"], s["redirect_uri"], s.get("client_name"))
        if s.get("seed") == "demo":
            from .seed import seed_demo_locked

            seed_demo_locked(self)

    def _next_id(self, kind: str) -> int:
        value = self._ids[kind]
        self._ids[kind] = value + 1
        return value

    def now(self) -> int:
        return int(time.time() + self.settings.get("clock_offset", 0.0))

    def now_f(self) -> float:
        return time.time() + self.settings.get("clock_offset", 0.0)

    def reset(self, keep_settings: bool = False) -> None:
        with self.lock:
            settings = self.settings if keep_settings else self._startup_settings
            settings = dict(settings, blocked=False)
            self._reset_locked(settings)

    # ---------------------------------------------------------------------- account / host --
    def ensure_host(self, host: str) -> None:
        with self.lock:
            if not self.settings.get("account_host"):
                self.settings["account_host"] = host

    @property
    def account_host(self) -> str:
        return self.settings.get("account_host") or "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"{self.settings['account_scheme']}://{self.account_host}"

    def account_ref(self) -> dict[str, Any]:
        """The ``account`` block of webhooks."""
        with self.lock:
            return {"subdomain": self.settings["subdomain"], "id": self.settings["account_id"], "self_url": self.base_url}

    def account_json(self, with_: set[str] | None = None) -> dict[str, Any]:
        with_ = with_ or set()
        with self.lock:
            s = self.settings
            uid = s["current_user_id"]
            data: dict[str, Any] = {
                "id": s["account_id"],
                "name": s["account_name"],
                "subdomain": s["subdomain"],
                "created_at": self.created_at,
                "created_by": uid,
                "updated_at": self.created_at,
                "updated_by": uid,
                "current_user_id": uid,
                "country": s["country"],
                "currency": s["currency"],
                "currency_symbol": "₽" if s["currency"] == "RUB" else s["currency"],
                "customers_mode": "disabled",
                "is_unsorted_on": True,
                "mobile_feature_version": 0,
                "is_loss_reason_enabled": True,
                "is_helpbot_enabled": False,
                "is_technical_account": False,
                "contact_name_display_order": 1,
            }
            if "amojo_id" in with_:
                data["amojo_id"] = self.amojo_id
            if "uuid" in with_:
                data["uuid"] = str(uuid.UUID(int=s["account_id"]))
            if "version" in with_:
                data["version"] = 11
            if "amojo_rights" in with_:
                data["amojo_rights"] = {"can_direct": True, "can_create_groups": True}
            if "datetime_settings" in with_:
                data["datetime_settings"] = {
                    "date_pattern": "d.m.Y H:i", "short_date_pattern": "d.m.Y", "short_time_pattern": "H:i",
                    "date_format": "d.m.Y", "time_format": "H:i:s", "timezone": "Europe/Moscow",
                    "timezone_offset": "+03:00",
                }
            if "drive_url" in with_:
                data["drive_url"] = f"{self.base_url}/drive"
            data["_links"] = {"self": {"href": f"{self.base_url}/api/v4/account"}}
            embedded: dict[str, Any] = {}
            if "users_groups" in with_:
                embedded["users_groups"] = [{"id": 0, "name": "Отдел продаж", "uuid": None}]
            if "task_types" in with_:
                embedded["task_types"] = [
                    {"id": 1, "name": "Связаться", "color": None, "icon_id": None, "code": "FOLLOW_UP"},
                    {"id": 2, "name": "Встреча", "color": None, "icon_id": None, "code": "MEETING"},
                ]
            if embedded:
                data["_embedded"] = embedded
            return data

    # ----------------------------------------------------------------------------- settings --
    def get_settings(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.settings)

    def update_settings(self, updates: dict[str, Any]) -> dict[str, Any]:
        updates = dict(updates)
        revoke = updates.pop("revoke", None)
        with self.lock:
            new = knobs.merge(self.settings, updates)
            if "random_seed" in updates:
                self.rng = random.Random(new["random_seed"])
            if "blocked" in updates and not new["blocked"]:
                self._count_429_for_block = 0
            self.settings = new
            if {"client_id", "client_secret", "redirect_uri"} & set(updates) and all(
                    new.get(k) for k in ("client_id", "client_secret", "redirect_uri")):
                self._register_client_locked(new["client_id"], new["client_secret"], new["redirect_uri"],
                                             new.get("client_name"))
            if revoke and knobs._as_bool("revoke", revoke):
                self._revoke_locked(None)
            return copy.deepcopy(self.settings)

    def advance_clock(self, seconds: float) -> float:
        with self.lock:
            self.settings["clock_offset"] = float(self.settings["clock_offset"]) + float(seconds)
            return self.settings["clock_offset"]

    # ------------------------------------------------------------------------------ clients --
    def _register_client_locked(self, client_id: str, client_secret: str, redirect_uri: str,
                                name: str | None = None) -> dict[str, Any]:
        client = {
            "client_id": str(client_id),
            "client_secret": str(client_secret),
            "redirect_uri": str(redirect_uri),
            "name": name or "Chatsource",
        }
        self.clients[client["client_id"]] = client
        return dict(client)

    def register_client(self, client_id: str, client_secret: str, redirect_uri: str,
                        name: str | None = None) -> dict[str, Any]:
        if not client_id or not client_secret or not redirect_uri:
            raise SandboxError("client_id, client_secret and redirect_uri are required")
        parts = urlsplit(str(redirect_uri))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SandboxError("redirect_uri must be an absolute http(s) URL")
        with self.lock:
            return self._register_client_locked(client_id, client_secret, redirect_uri, name)

    def get_client(self, client_id: str | None) -> dict[str, Any] | None:
        with self.lock:
            client = self.clients.get(str(client_id)) if client_id else None
            return dict(client) if client else None

    def list_clients(self) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for c in self.clients.values():
                tokens = [t for t in self.access_tokens.values() if t["client_id"] == c["client_id"]]
                live = [t for t in tokens if not t["revoked"] and t["expires_at"] > self.now()]
                out.append(dict(c, access_tokens_issued=len(tokens), access_tokens_live=len(live)))
            return out

    # -------------------------------------------------------------------------------- OAuth --
    def issue_code(self, client_id: str) -> str:
        with self.lock:
            if str(client_id) not in self.clients:
                raise SandboxError("unknown client_id", 400)
            code = "def50200" + secrets.token_hex(160)
            self.codes[code] = {"client_id": str(client_id), "created_at": self.now_f(), "used": False}
            return code

    def redirect_params(self, client_id: str, code: str, state: str | None) -> list[tuple[str, str]]:
        with self.lock:
            params = [("code", code), ("referer", self.account_host)]
            if state is not None and state != "":
                params.append(("state", state))
            params.append(("platform", str(self.settings["platform"])))
            params.append(("client_id", str(client_id)))
            return params

    def _make_jwt(self, client_id: str, exp: int, iat: int) -> str:
        s = self.settings
        header = {"typ": "JWT", "alg": "HS256"}
        claims = {
            "aud": client_id,
            "jti": uuid.uuid4().hex,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "sub": str(s["current_user_id"]),
            "grant_type": "",
            "account_id": s["account_id"],
            "base_domain": self.account_host,
            "version": 2,
            "scopes": ["crm", "files", "files_delete", "notifications", "push_notifications"],
            "hash_uuid": str(uuid.uuid4()),
            "api_domain": self.account_host,
        }
        signing_input = _b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + _b64url(
            json.dumps(claims, separators=(",", ":")).encode()
        )
        sig = hmac.new(self._jwt_key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return signing_input + "." + _b64url(sig)

    def _issue_pair_locked(self, client_id: str, parent: str | None) -> dict[str, Any]:
        s = self.settings
        now = self.now()
        access = self._make_jwt(client_id, now + s["access_ttl"], now)
        refresh = "def50200" + secrets.token_hex(256)
        self.access_tokens[access] = {
            "client_id": client_id, "expires_at": now + s["access_ttl"], "revoked": False,
            "refresh_token": refresh, "issued_at": now,
        }
        self.refresh_tokens[refresh] = {
            "client_id": client_id, "expires_at": now + s["refresh_ttl"], "status": "active",
            "parent": parent, "children": [], "access_token": access, "issued_at": now,
        }
        if parent and parent in self.refresh_tokens:
            self.refresh_tokens[parent]["children"].append(refresh)
        return {
            "token_type": "Bearer",
            "expires_in": s["access_ttl"],
            "server_time": now,
            "access_token": access,
            "refresh_token": refresh,
        }

    def token_grant(self, params: dict[str, Any]) -> dict[str, Any]:
        """POST /oauth2/access_token.  Raises :class:`OAuthError` on any bad input."""
        def param(name: str) -> str:
            value = params.get(name)
            if value is None or value == "":
                raise OAuthError(f"Check the `{name}` parameter")
            return str(value)

        grant_type = params.get("grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError("Check that all required parameters have been provided")
        client_id = param("client_id")
        with self.lock:
            client = self.clients.get(client_id)
            if client is None:
                raise OAuthError("Check the `client_id` parameter")
            secret = param("client_secret")
            if not hmac.compare_digest(secret, client["client_secret"]):
                raise OAuthError("Client authentication failed")
            redirect_uri = param("redirect_uri")
            if redirect_uri != client["redirect_uri"]:
                raise OAuthError("Invalid redirect URI")
            now = self.now_f()
            if grant_type == "authorization_code":
                code = param("code")
                rec = self.codes.get(code)
                if rec is None:
                    raise OAuthError("Cannot decrypt the authorization code")
                if rec["client_id"] != client_id:
                    raise OAuthError("Authorization code was not issued to this client")
                if rec["used"]:
                    raise OAuthError("Authorization code has been revoked")
                if now > rec["created_at"] + self.settings["code_ttl"]:
                    raise OAuthError("Authorization code has expired")
                rec["used"] = True
                self.stats["code_exchanges"] += 1
                return self._issue_pair_locked(client_id, None)
            # refresh_token grant
            token = param("refresh_token")
            rec = self.refresh_tokens.get(token)
            if rec is None:
                raise OAuthError("Cannot decrypt the refresh token")
            if rec["client_id"] != client_id:
                raise OAuthError("Token is not linked to client")
            if rec["status"] != "active":
                raise OAuthError("Token has been revoked")
            if now > rec["expires_at"]:
                raise OAuthError("Token has expired")
            if self.settings["refresh_grace"]:
                # Kommo: the old token stays valid until the new one is used.  Using this
                # token kills its parent and the parent's other children.
                parent = rec.get("parent")
                if parent and parent in self.refresh_tokens:
                    self.refresh_tokens[parent]["status"] = "used"
                    for sibling in self.refresh_tokens[parent]["children"]:
                        if sibling != token and sibling in self.refresh_tokens:
                            self.refresh_tokens[sibling]["status"] = "used"
            else:
                rec["status"] = "used"  # RU: single use
            if self.settings["revoke_old_access_on_refresh"]:
                old = self.access_tokens.get(rec["access_token"])
                if old:
                    old["revoked"] = True
            self.stats["token_refreshes"] += 1
            return self._issue_pair_locked(client_id, token)

    def check_access(self, token: str | None) -> str | None:
        """None when the bearer token is good, else the reason (for the 401 detail)."""
        if not token:
            return "Unauthorized"
        with self.lock:
            rec = self.access_tokens.get(token)
            if rec is None:
                return "Unauthorized"
            if rec["revoked"]:
                return "Token has been revoked"
            if self.now_f() >= rec["expires_at"]:
                return "Token has expired"
            return None

    def refresh_token_account(self, token: str | None) -> dict[str, Any] | None:
        """GET /oauth2/account/current/subdomain (X-Refresh-Token)."""
        with self.lock:
            rec = self.refresh_tokens.get(token or "")
            if rec is None or rec["status"] == "revoked" or self.now_f() > rec["expires_at"]:
                return None
            host = self.account_host
            return {
                "id": self.settings["account_id"],
                "subdomain": self.settings["subdomain"],
                "domain": host,
                "top_level_domain": host.rsplit(".", 1)[-1].split(":")[0] if "." in host else "local",
            }

    def _revoke_locked(self, client_id: str | None) -> int:
        n = 0
        for rec in self.access_tokens.values():
            if client_id is None or rec["client_id"] == client_id:
                if not rec["revoked"]:
                    n += 1
                rec["revoked"] = True
        for rec in self.refresh_tokens.values():
            if client_id is None or rec["client_id"] == client_id:
                rec["status"] = "revoked"
        for rec in self.codes.values():
            if client_id is None or rec["client_id"] == client_id:
                rec["used"] = True
        return n

    def revoke(self, client_id: str | None = None) -> int:
        """Revoke every token (of one client, or all): API 401, refresh 'Token has been revoked'."""
        with self.lock:
            return self._revoke_locked(client_id)

    # ------------------------------------------------------------------- gate / statistics --
    def _reset_stats_locked(self) -> None:
        self.stats: dict[str, Any] = {
            "api_calls": 0,
            "calls_by_endpoint": {},
            "responses_by_status": {},
            "peak_calls_per_second": 0,
            "responses_429": 0,
            "responses_403_blocked": 0,
            "token_refreshes": 0,
            "code_exchanges": 0,
            "webhook_deliveries": 0,
        }
        self._stats_window: deque[float] = deque()

    def reset_stats(self) -> None:
        with self.lock:
            self._reset_stats_locked()

    def get_stats(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.stats)

    def api_gate(self, endpoint: str) -> str | None:
        """Count one API/token call.  Returns None (go on), ``"blocked"`` or ``"429"``."""
        with self.lock:
            t = time.monotonic()
            s = self.settings
            st = self.stats
            st["api_calls"] += 1
            st["calls_by_endpoint"][endpoint] = st["calls_by_endpoint"].get(endpoint, 0) + 1
            win = self._stats_window
            win.append(t)
            while win and win[0] <= t - 1.0:
                win.popleft()
            st["peak_calls_per_second"] = max(st["peak_calls_per_second"], len(win))
            if s["blocked"]:
                st["responses_403_blocked"] += 1
                return "blocked"
            limit = s["rate_limit"]
            if not limit:
                return None
            rw = self._rate_window
            while rw and rw[0] <= t - s["rate_window"]:
                rw.popleft()
            if len(rw) + 1 > limit:
                if s["rate_limit_count_refused"]:
                    rw.append(t)
                st["responses_429"] += 1
                self._count_429_for_block += 1
                n = s["block_after_429s"]
                if n and self._count_429_for_block >= n:
                    s["blocked"] = True
                return "429"
            rw.append(t)
            return None

    def record_status(self, status: int) -> None:
        with self.lock:
            key = str(status)
            by = self.stats["responses_by_status"]
            by[key] = by.get(key, 0) + 1

    def unblock(self) -> None:
        with self.lock:
            self.settings["blocked"] = False
            self._count_429_for_block = 0
            self._rate_window.clear()

    def roll_error(self) -> bool:
        with self.lock:
            rate = self.settings["error_rate"]
            return rate > 0 and self.rng.random() < rate

    # ---------------------------------------------------------------------- custom fields --
    def _add_field_locked(self, entity: str, name: str, type_: str, code: str | None = None,
                          enums: list[Any] | None = None, sort: int | None = None,
                          is_api_only: bool = False, predefined: bool = False) -> dict[str, Any]:
        fid = self._next_id("field")
        enum_list = None
        if type_ in ENUM_TYPES:
            enum_list = []
            for i, e in enumerate(enums or []):
                if isinstance(e, dict):
                    value, ecode = str(e.get("value", "")), e.get("code")
                else:
                    value, ecode = str(e), None
                enum_list.append({"id": self._next_id("enum"), "value": value, "sort": (i + 1) * 2, "code": ecode})
        field = {
            "id": fid,
            "name": name,
            "type": type_,
            "code": code,
            "sort": sort if sort is not None else 500 + len(self.fields[entity]) * 2,
            "is_api_only": bool(is_api_only),
            "enums": enum_list,
            "group_id": None,
            "required_statuses": [],
            "is_deletable": not predefined,
            "is_predefined": predefined,
            "entity_type": entity,
            "remind": None,
            "currency": None,
            "tracking_callback": None,
            "search_in": None,
        }
        self.fields[entity].append(field)
        return field

    def _seed_fields_locked(self) -> None:
        self._add_field_locked("contacts", "Должность", "text", "POSITION", sort=2, predefined=True)
        self._add_field_locked("contacts", "Телефон", "multitext", "PHONE", enums=list(PHONE_ENUMS), sort=4,
                               predefined=True)
        self._add_field_locked("contacts", "Email", "multitext", "EMAIL", enums=list(EMAIL_ENUMS), sort=6,
                               predefined=True)
        for entity in ("leads", "contacts"):
            for i, name in enumerate(TRACKING_FIELDS):
                self._add_field_locked(entity, name, "tracking_data", name.upper(), sort=1000 + i * 2)
        self._add_field_locked("leads", "Сессия UIS", "text", None, sort=510)

    def add_custom_field(self, entity: str, name: str, type: str = "text", code: str | None = None,
                         enums: list[Any] | None = None, sort: int | None = None,
                         is_api_only: bool = False) -> dict[str, Any]:
        if entity not in self.fields:
            raise SandboxError("entity must be 'leads' or 'contacts'")
        if not name:
            raise SandboxError("name is required")
        if type not in FIELD_TYPES:
            raise SandboxError(f"unknown field type {type!r}")
        with self.lock:
            if code and any(f["code"] == code for f in self.fields[entity]):
                raise SandboxError(f"code {code!r} already used")
            return copy.deepcopy(self._add_field_locked(entity, name, type, code, enums, sort, is_api_only))

    def list_fields(self, entity: str) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.fields.get(entity, []))

    def _find_field_locked(self, entity: str, key: Any) -> dict[str, Any] | None:
        fields = self.fields[entity]
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            for f in fields:
                if f["id"] == int(key):
                    return f
        for f in fields:
            if f["code"] and str(key) == f["code"]:
                return f
        for f in fields:
            if str(key) == f["name"]:
                return f
        return None

    def field_json(self, field: dict[str, Any]) -> dict[str, Any]:
        entity = field["entity_type"]
        out: dict[str, Any] = {
            "id": field["id"],
            "name": field["name"],
            "type": field["type"],
            "account_id": self.settings["account_id"],
            "code": field["code"],
            "sort": field["sort"],
            "is_api_only": field["is_api_only"],
            "enums": copy.deepcopy(field["enums"]),
            "group_id": field["group_id"],
            "required_statuses": list(field["required_statuses"]),
            "is_deletable": field["is_deletable"],
        }
        if entity == "contacts":
            out["is_predefined"] = field["is_predefined"]
        out["entity_type"] = entity
        out["remind"] = field["remind"]
        out["currency"] = field["currency"]
        if field["type"] == "tracking_data":
            out["tracking_callback"] = field["tracking_callback"]
        if entity == "leads":
            out["is_computed"] = False
            out["hidden_statuses"] = []
            out["chained_lists"] = None
        out["search_in"] = field["search_in"]
        out["_links"] = {"self": {"href": f"{self.base_url}/api/v4/{entity}/custom_fields/{field['id']}"}}
        return out

    def _cf_input_values(self, field: dict[str, Any], raw: Any) -> list[dict[str, Any]]:
        items = raw.get("values", raw) if isinstance(raw, dict) and "values" in raw else raw
        if not isinstance(items, list):
            items = [items]
        out: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, dict):
                value = item.get("value")
                enum_code = item.get("enum_code", item.get("enum"))
                enum_id = item.get("enum_id")
            else:
                value, enum_code, enum_id = item, None, None
            if value is None or value == "":
                continue
            rec: dict[str, Any] = {"value": value}
            if field["type"] == "checkbox":
                rec["value"] = bool(value) and value not in ("0", "false")
            elif field["type"] == "numeric":
                rec["value"] = str(value)
            elif field["type"] not in ("date", "date_time", "birthday"):
                rec["value"] = str(value)
            if field["enums"] is not None:
                enums = field["enums"]
                chosen = None
                if enum_id is not None:
                    chosen = next((e for e in enums if e["id"] == int(enum_id)), None)
                if chosen is None and enum_code is not None:
                    chosen = next((e for e in enums if e["value"] == enum_code or e["code"] == enum_code), None)
                if chosen is None and field["type"] != "multitext":
                    chosen = next((e for e in enums if e["value"] == str(value)), None)
                    if chosen is None:
                        raise SandboxError(f"value {value!r} is not an enum of field {field['id']}")
                if chosen is None:
                    chosen = enums[0] if enums else None
                if chosen is not None:
                    rec["enum_id"] = chosen["id"]
                    rec["enum_code"] = chosen["code"] if field["type"] != "multitext" else chosen["value"]
            out.append(rec)
        return out

    def _apply_cf_locked(self, entity: str, target: dict[str, Any], custom_fields: Any) -> None:
        if not custom_fields:
            return
        if isinstance(custom_fields, dict):
            items = list(custom_fields.items())
        elif isinstance(custom_fields, list):  # v4 style [{field_id|field_code, values}]
            items = [(cf.get("field_id", cf.get("field_code", cf.get("id"))), cf) for cf in custom_fields]
        else:
            raise SandboxError("custom_fields must be an object {field_id: value} or a v4 list")
        for key, raw in items:
            field = self._find_field_locked(entity, key)
            if field is None:
                raise SandboxError(f"unknown {entity} custom field {key!r}")
            values = self._cf_input_values(field, raw)
            if values:
                target["cf"][field["id"]] = values
            else:
                target["cf"].pop(field["id"], None)

    def cf_json(self, entity: str, cf: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
        if not cf:
            return None
        by_id = {f["id"]: f for f in self.fields[entity]}
        key_mode = self.settings["multitext_enum_key"]
        out = []
        for fid, values in cf.items():
            field = by_id.get(fid)
            if field is None:
                continue
            rendered = []
            for v in values:
                item: dict[str, Any] = {"value": v["value"]}
                if "enum_id" in v:
                    item["enum_id"] = v["enum_id"]
                    if field["type"] == "multitext" and key_mode in ("enum", "both"):
                        item["enum"] = v["enum_code"]
                    if field["type"] != "multitext" or key_mode in ("enum_code", "both"):
                        item["enum_code"] = v["enum_code"]
                rendered.append(item)
            out.append({
                "field_id": fid,
                "field_name": field["name"],
                "field_code": field["code"],
                "field_type": field["type"],
                "values": rendered,
            })
        return out or None

    # ------------------------------------------------------------------ contacts and leads --
    def _add_contact_locked(self, name: str | None, phones: Any = None, emails: Any = None,
                            custom_fields: Any = None) -> dict[str, Any]:
        now = self.now()
        name = (name or "").strip() or "Контакт без имени"
        first, _, last = name.partition(" ")
        contact = {
            "id": self._next_id("contact"), "name": name, "first_name": first, "last_name": last,
            "created_at": now, "updated_at": now, "cf": {}, "lead_ids": [],
        }
        for code, items in (("PHONE", phones), ("EMAIL", emails)):
            if not items:
                continue
            if isinstance(items, (str, dict)):
                items = [items]
            field = self._find_field_locked("contacts", code)
            if field is None:
                continue
            norm = [i if isinstance(i, dict) else {"value": i, "enum_code": "WORK" if code == "PHONE" else "WORK"}
                    for i in items]
            values = self._cf_input_values(field, norm)
            if values:
                contact["cf"][field["id"]] = values
        self._apply_cf_locked("contacts", contact, custom_fields)
        self.contacts[contact["id"]] = contact
        return contact

    def add_contact(self, name: str | None = None, phones: Any = None, emails: Any = None,
                    custom_fields: Any = None) -> dict[str, Any]:
        with self.lock:
            contact = self._add_contact_locked(name, phones, emails, custom_fields)
            return self.contact_json(contact, {"leads"})

    def _add_lead_locked(self, name: str | None, contact_id: int | None, custom_fields: Any = None,
                         price: int = 0) -> dict[str, Any]:
        now = self.now()
        lead_id = self._next_id("lead")
        lead = {
            "id": lead_id, "name": (name or "").strip() or f"Сделка #{lead_id}", "price": int(price or 0),
            "status_id": FIRST_STATUS_ID, "pipeline_id": PIPELINE_ID,
            "created_at": now, "updated_at": now, "cf": {}, "contacts": [],
        }
        self._apply_cf_locked("leads", lead, custom_fields)
        if contact_id is not None:
            contact = self.contacts.get(int(contact_id))
            if contact is None:
                raise SandboxError(f"unknown contact {contact_id}", 404)
            lead["contacts"].append({"id": contact["id"], "is_main": True})
            contact["lead_ids"].append(lead_id)
        self.leads[lead_id] = lead
        return lead

    def add_lead(self, name: str | None = None, contact_id: int | None = None, custom_fields: Any = None,
                 price: int = 0) -> dict[str, Any]:
        with self.lock:
            lead = self._add_lead_locked(name, contact_id, custom_fields, price)
            return self.lead_json(lead, {"contacts"})

    def update_lead_fields(self, lead_id: int, custom_fields: Any) -> dict[str, Any]:
        with self.lock:
            lead = self.leads.get(int(lead_id))
            if lead is None:
                raise SandboxError("lead not found", 404)
            self._apply_cf_locked("leads", lead, custom_fields)
            lead["updated_at"] = self.now()
            return self.lead_json(lead, {"contacts"})

    def _link(self, path: str) -> dict[str, Any]:
        return {"self": {"href": f"{self.base_url}{path}"}}

    def contact_json(self, c: dict[str, Any], with_: set[str] | None = None) -> dict[str, Any]:
        with_ = with_ or set()
        s = self.settings
        data = {
            "id": c["id"], "name": c["name"], "first_name": c["first_name"], "last_name": c["last_name"],
            "responsible_user_id": s["current_user_id"], "group_id": 0,
            "created_by": s["current_user_id"], "updated_by": s["current_user_id"],
            "created_at": c["created_at"], "updated_at": c["updated_at"], "closest_task_at": None,
            "is_deleted": False, "is_unsorted": False,
            "custom_fields_values": self.cf_json("contacts", c["cf"]),
            "account_id": s["account_id"],
            "_links": self._link(f"/api/v4/contacts/{c['id']}"),
        }
        embedded: dict[str, Any] = {"tags": [], "companies": []}
        if "leads" in with_:
            embedded["leads"] = [{"id": lid, "_links": self._link(f"/api/v4/leads/{lid}")} for lid in c["lead_ids"]]
        if "customers" in with_:
            embedded["customers"] = []
        if "catalog_elements" in with_:
            embedded["catalog_elements"] = []
        data["_embedded"] = embedded
        return data

    def lead_json(self, lead: dict[str, Any], with_: set[str] | None = None) -> dict[str, Any]:
        with_ = with_ or set()
        s = self.settings
        data: dict[str, Any] = {
            "id": lead["id"], "name": lead["name"], "price": lead["price"],
            "responsible_user_id": s["current_user_id"], "group_id": 0,
            "status_id": lead["status_id"], "pipeline_id": lead["pipeline_id"], "loss_reason_id": None,
        }
        if "source_id" in with_:
            data["source_id"] = None
        data.update({
            "created_by": s["current_user_id"], "updated_by": s["current_user_id"],
            "created_at": lead["created_at"], "updated_at": lead["updated_at"], "closed_at": None,
            "closest_task_at": None, "is_deleted": False,
            "custom_fields_values": self.cf_json("leads", lead["cf"]),
            "score": None, "account_id": s["account_id"], "labor_cost": None,
        })
        if "is_price_modified_by_robot" in with_:
            data["is_price_modified_by_robot"] = False
        data["_links"] = self._link(f"/api/v4/leads/{lead['id']}")
        embedded: dict[str, Any] = {"tags": [], "companies": []}
        if "contacts" in with_:
            embedded["contacts"] = [
                {"id": c["id"], "is_main": c["is_main"], "_links": self._link(f"/api/v4/contacts/{c['id']}")}
                for c in lead["contacts"]
            ]
        if "catalog_elements" in with_:
            embedded["catalog_elements"] = []
        data["_embedded"] = embedded
        return data

    def get_contact(self, contact_id: int, with_: set[str] | None = None) -> dict[str, Any] | None:
        with self.lock:
            c = self.contacts.get(int(contact_id))
            return self.contact_json(c, with_) if c else None

    def get_lead(self, lead_id: int, with_: set[str] | None = None) -> dict[str, Any] | None:
        with self.lock:
            lead = self.leads.get(int(lead_id))
            return self.lead_json(lead, with_) if lead else None

    def query_entities(self, entity: str, ids: list[int] | None, query: str | None,
                       order: tuple[str, str] | None, with_: set[str]) -> list[dict[str, Any]]:
        """All matching contacts/leads (REST shape), filtered and ordered; the caller pages."""
        with self.lock:
            store = self.contacts if entity == "contacts" else self.leads
            rows = list(store.values())
            if ids is not None:
                wanted = set(ids)
                rows = [r for r in rows if r["id"] in wanted]
            if query:
                q = query.lower()

                def hit(r: dict[str, Any]) -> bool:
                    if q in r["name"].lower() or q == str(r["id"]):
                        return True
                    digits = "".join(ch for ch in q if ch.isdigit())
                    for values in r["cf"].values():
                        for v in values:
                            text = str(v["value"]).lower()
                            if q in text:
                                return True
                            if len(digits) >= 5 and digits in "".join(ch for ch in text if ch.isdigit()):
                                return True
                    return False

                rows = [r for r in rows if hit(r)]
            key, direction = order or ("id", "asc")
            rows.sort(key=lambda r: (r.get(key, 0), r["id"]), reverse=(direction == "desc"))
            render = self.contact_json if entity == "contacts" else self.lead_json
            return [render(r, with_) for r in rows]

    # -------------------------------------------------------------------------------- talks --
    def talk_json(self, t: dict[str, Any]) -> dict[str, Any]:
        leads = []
        if t["entity_type"] == "lead" and t["entity_id"]:
            leads = [{"id": t["entity_id"], "_links": self._link(f"/api/v4/leads/{t['entity_id']}")}]
        return {
            "talk_id": t["talk_id"],
            "created_at": t["created_at"],
            "updated_at": t["updated_at"],
            "rate": t["rate"],
            "contact_id": t["contact_id"],
            "chat_id": t["chat_id"],
            "entity_id": t["entity_id"],
            "entity_type": t["entity_type"],
            "is_in_work": t["is_in_work"],
            "is_read": t["is_read"],
            "origin": t["origin"],
            "missed_at": t["missed_at"],
            "account_id": self.settings["account_id"],
            "status": self._talk_status(t),
            "_links": self._link(f"/api/v4/talks/{t['talk_id']}"),
            "_embedded": {
                "contacts": [{"id": t["contact_id"], "_links": self._link(f"/api/v4/contacts/{t['contact_id']}")}],
                "leads": leads,
                "customers": [],
            },
        }

    @staticmethod
    def _talk_status(t: dict[str, Any]) -> str:
        """Live talks carry `status` (in_work | closed | nps_scheduled | nps_in_progress | with_error,
        seen on live accounts, undocumented); the sandbox's NPS bot keeps a talk in work while it asks, so "closing" is nps_in_progress."""
        if not t["is_in_work"]:
            return "closed"
        return "nps_in_progress" if t["closing"] else "in_work"

    def query_talks(self) -> list[dict[str, Any]]:
        """`GET /api/v4/talks`: every talk, newest first [inf: the order is not documented]."""
        with self.lock:
            return [self.talk_json(t) for t in sorted(self.talks.values(), key=lambda t: t["talk_id"], reverse=True)]

    def get_talk(self, talk_id: int) -> dict[str, Any] | None:
        with self.lock:
            t = self.talks.get(int(talk_id))
            return self.talk_json(t) if t else None

    def list_talks(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(self.talk_json(t), closing=t["closing"]) for t in
                    sorted(self.talks.values(), key=lambda t: t["talk_id"], reverse=True)]

    def _add_talk_locked(self, contact_id: int, lead_id: int | None, origin: str, chat_id: str | None = None,
                         is_read: bool = False, created_at: int | None = None) -> dict[str, Any]:
        now = self.now()
        talk = {
            "talk_id": self._next_id("talk"),
            "created_at": int(created_at) if created_at else now,
            "updated_at": int(created_at) if created_at else now,
            "rate": 0,
            "contact_id": contact_id,
            "chat_id": chat_id or str(uuid.uuid4()),
            "entity_id": lead_id,
            "entity_type": "lead" if lead_id else None,
            "is_in_work": True,
            "is_read": bool(is_read),
            "origin": origin,
            "missed_at": None,
            "closing": False,
        }
        self.talks[talk["talk_id"]] = talk
        self._log_talk_event_locked("talk_created", talk["talk_id"], talk["created_at"])
        return talk

    def create_chat(self, contact: dict[str, Any] | None = None, lead: Any = ..., origin: str = "telegram",
                    entity_type: str | None = "lead", contact_id: int | None = None,
                    lead_id: int | None = None, chat_id: str | None = None, is_read: bool = False,
                    created_at: int | None = None, notify: bool = True) -> dict[str, Any]:
        """Contact (+ lead) + open talk, then the ``add_talk`` webhook.

        ``lead`` omitted -> a new lead; ``None`` -> no lead (talk without entity);
        a dict ``{name?, custom_fields?}`` -> a new lead with those values.
        ``contact_id`` / ``lead_id`` / ``chat_id`` reuse existing ones.
        """
        if entity_type not in ("lead", None):
            raise SandboxError("entity_type must be 'lead' or null (customers are not emulated)")
        if not origin:
            raise SandboxError("origin is required")
        with self.lock:
            if contact_id is not None:
                c = self.contacts.get(int(contact_id))
                if c is None:
                    raise SandboxError(f"unknown contact {contact_id}", 404)
            else:
                spec = contact or {}
                c = self._add_contact_locked(spec.get("name"), spec.get("phones"), spec.get("emails"),
                                             spec.get("custom_fields"))
            lead_obj = None
            if lead_id is not None:
                lead_obj = self.leads.get(int(lead_id))
                if lead_obj is None:
                    raise SandboxError(f"unknown lead {lead_id}", 404)
            elif lead is not None and entity_type == "lead":
                spec = lead if isinstance(lead, dict) else {}
                name = spec.get("name") or f"Сделка из чата {c['name']}"
                lead_obj = self._add_lead_locked(name, c["id"], spec.get("custom_fields"), spec.get("price", 0))
            talk = self._add_talk_locked(c["id"], lead_obj["id"] if lead_obj else None, origin, chat_id,
                                         is_read, created_at)
            result = {
                "talk_id": talk["talk_id"], "chat_id": talk["chat_id"], "contact_id": c["id"],
                "lead_id": lead_obj["id"] if lead_obj else None,
            }
            snapshot = self.talk_json(talk)
        result["deliveries"] = self.emit_talk_event("add_talk", [snapshot]) if notify else []
        result["talk"] = snapshot
        return result

    def close_talk(self, talk_id: int, force_close: bool = False, control: bool = False) -> dict[str, Any]:
        """POST /api/v4/talks/{id}/close.  Returns ``{"status": "closed"|"closing", "talk", "deliveries"}``."""
        with self.lock:
            t = self.talks.get(int(talk_id))
            if t is None:
                raise ApiProblem("Talk not found", 404)
            if not t["is_in_work"] or (t["closing"] and not control):
                raise ApiProblem("Talk is already closed or closing", 422)
            if self.settings["nps_bot"] and not force_close and not control:
                t["closing"] = True
                return {"status": "closing", "talk": self.talk_json(t), "deliveries": []}
            t["is_in_work"] = False
            t["closing"] = False
            t["updated_at"] = self.now()
            self._log_talk_event_locked("talk_closed", t["talk_id"], t["updated_at"])
            snapshot = self.talk_json(t)
        return {"status": "closed", "talk": snapshot, "deliveries": self.emit_talk_event("update_talk", [snapshot])}

    def read_talk(self, talk_id: int) -> dict[str, Any]:
        with self.lock:
            t = self.talks.get(int(talk_id))
            if t is None:
                raise ApiProblem("Talk not found", 404)
            if t["is_read"]:
                return {"talk": self.talk_json(t), "deliveries": []}
            t["is_read"] = True
            t["updated_at"] = self.now()
            snapshot = self.talk_json(t)
        return {"talk": snapshot, "deliveries": self.emit_talk_event("update_talk", [snapshot])}

    def rate_talk(self, talk_id: int, rate: int) -> dict[str, Any]:
        """The NPS bot got a rating: set ``rate``; a talk that was closing closes."""
        with self.lock:
            t = self.talks.get(int(talk_id))
            if t is None:
                raise ApiProblem("Talk not found", 404)
            t["rate"] = int(rate)
            t["updated_at"] = self.now()
            if t["closing"]:
                t["closing"] = False
                t["is_in_work"] = False
                self._log_talk_event_locked("talk_closed", t["talk_id"], t["updated_at"])
            snapshot = self.talk_json(t)
        return {"talk": snapshot, "deliveries": self.emit_talk_event("update_talk", [snapshot])}

    # ---------------------------------------------------------------------------- event log --
    def _event_id(self, created_at: int) -> str:
        """A ULID (26 Crockford base32 characters: 48-bit milliseconds + 80 random bits), as live ids look."""
        alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
        number = (int(created_at * 1000) << 80) | int.from_bytes(secrets.token_bytes(10), "big")
        return "".join(alphabet[(number >> (5 * i)) & 31] for i in reversed(range(26)))

    def _log_talk_event_locked(self, type_: str, talk_id: int, created_at: int) -> None:
        """Every talk created or closed goes into the event log. Where a real `talk_closed` carries the
        talk id is not documented: by default in value_after[0].talk.id (by analogy with the
        `incoming_chat_message` event's value_after[0].message; sandbox/README.md); the knob
        `talk_event_shape` puts it elsewhere. Outside the "talk.id" and "entity" shapes the event's
        entity is the talk's lead (or contact), so only the chosen place carries the talk id."""
        shape = self.settings.get("talk_event_shape", "talk.id")
        talk = self.talks.get(talk_id) or {}
        entity_id, entity_type = talk_id, "talk"
        if shape not in ("talk.id", "entity"):
            entity_id, entity_type = ((talk.get("entity_id"), "lead") if talk.get("entity_id")
                                      else (talk.get("contact_id"), "contact"))
        value_after = {
            "talk.id": [{"talk": {"id": talk_id}}],
            "talk.talk_id": [{"talk": {"talk_id": talk_id}}],
            "talk_id": [{"talk_id": talk_id}],
            "entity": [],
            "none": [{"talk": {}}],
        }[shape]
        self.events.append({
            "id": self._event_id(created_at), "type": type_, "entity_id": entity_id, "entity_type": entity_type,
            "created_by": 0, "created_at": int(created_at),
            "value_after": value_after, "value_before": [],
            "account_id": self.settings["account_id"],
        })

    def add_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Control: put an event of any shape into the log (id, created_at and account_id are filled
        when missing), e.g. a `talk_closed` that carries the talk id elsewhere, or none."""
        if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not event["type"]:
            raise SandboxError("an event is an object with a type")
        with self.lock:
            created_at = event.get("created_at")
            if created_at is None:
                created_at = self.now()
            elif isinstance(created_at, bool) or not isinstance(created_at, int):
                raise SandboxError("created_at must be a unix time (integer)")
            record = dict(event, created_at=created_at)
            record.setdefault("id", self._event_id(created_at))
            record.setdefault("account_id", self.settings["account_id"])
            self.events.append(record)
            return copy.deepcopy(record)

    def query_events(self, types: list[str] | None = None, created_from: int | None = None,
                     created_to: int | None = None) -> list[dict[str, Any]]:
        """The log filtered like GET /api/v4/events, newest first [inf: the order is not documented]."""
        with self.lock:
            rows = list(enumerate(self.events))
            if types:
                rows = [(i, e) for i, e in rows if e.get("type") in set(types)]
            if created_from is not None:
                rows = [(i, e) for i, e in rows if e["created_at"] >= created_from]
            if created_to is not None:
                rows = [(i, e) for i, e in rows if e["created_at"] <= created_to]
            rows.sort(key=lambda r: (r[1]["created_at"], r[0]), reverse=True)
            return [copy.deepcopy(e) for _, e in rows]

    def set_all_webhooks_disabled(self, disabled: bool = True) -> list[dict[str, Any]]:
        """Control: every hook disabled (or enabled again), as amoCRM does after 100 bad answers."""
        with self.lock:
            ids = list(self.webhooks)
        return [self.set_webhook_disabled(hook_id, disabled) for hook_id in ids]

    # ------------------------------------------------------------------- webhooks registry --
    def webhook_json(self, h: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": h["id"], "destination": h["destination"], "created_at": h["created_at"],
            "updated_at": h["updated_at"], "account_id": self.settings["account_id"],
            "created_by": h["created_by"], "sort": h["sort"], "disabled": h["disabled"],
            "settings": list(h["settings"]),
        }

    def list_webhooks(self, destination: str | None = None, internal: bool = False) -> list[dict[str, Any]]:
        with self.lock:
            hooks = sorted(self.webhooks.values(), key=lambda h: (h["sort"], h["id"]))
            if destination is not None:
                hooks = [h for h in hooks if h["destination"] == destination]
            if internal:
                now = self.now_f()
                window = self.settings["webhook_disable_window"]
                return [dict(self.webhook_json(h),
                             invalid_replies_in_window=sum(1 for x in h["invalid"] if x > now - window),
                             last_valid=h["last_valid"], disabled_at=h["disabled_at"]) for h in hooks]
            return [self.webhook_json(h) for h in hooks]

    def upsert_webhook(self, destination: Any, settings: Any, sort: Any = None) -> tuple[dict[str, Any], bool]:
        errors = []
        if not isinstance(destination, str) or not destination:
            errors.append({"code": "NotBlank", "path": "destination", "detail": "This value should not be blank."})
        else:
            parts = urlsplit(destination)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                errors.append({"code": "InvalidUrl", "path": "destination", "detail": "This value is not a valid URL."})
        if not isinstance(settings, list) or not settings:
            errors.append({"code": "NotBlank", "path": "settings", "detail": "This value should not be blank."})
        else:
            for i, name in enumerate(settings):
                if name not in KNOWN_EVENTS:
                    errors.append({"code": "NotSupportedChoice", "path": f"settings.{i}",
                                   "detail": "The value you selected is not a valid choice."})
        if sort is not None and (isinstance(sort, bool) or not isinstance(sort, int)):
            errors.append({"code": "InvalidType", "path": "sort", "detail": "This value should be of type int."})
        if errors:
            raise ApiProblem("Request validation failed", 400, validation_errors=errors)
        with self.lock:
            now = self.now()
            unique = list(dict.fromkeys(settings))
            for h in self.webhooks.values():
                if h["destination"] == destination:
                    h["settings"] = unique  # replaced, not merged
                    if sort is not None:
                        h["sort"] = sort
                    h["updated_at"] = now
                    return self.webhook_json(h), False
            if len(self.webhooks) >= self.settings["max_webhooks"]:
                raise ApiProblem("Webhooks limit exceeded", 400, validation_errors=[{
                    "code": "WebhooksLimitExceeded", "path": "destination",
                    "detail": f"No more than {self.settings['max_webhooks']} webhooks per account."}])
            hid = self._next_id("webhook")
            h = {
                "id": hid, "destination": destination, "settings": unique,
                "sort": sort if sort is not None else len(self.webhooks) + 1,
                "disabled": False, "created_at": now, "updated_at": now,
                "created_by": self.settings["current_user_id"], "invalid": deque(), "last_valid": None,
                "disabled_at": None,
            }
            self.webhooks[hid] = h
            return self.webhook_json(h), True

    def delete_webhook(self, destination: Any) -> bool:
        if not isinstance(destination, str) or not destination:
            raise ApiProblem("Request validation failed", 400, validation_errors=[
                {"code": "NotBlank", "path": "destination", "detail": "This value should not be blank."}])
        with self.lock:
            for hid, h in list(self.webhooks.items()):
                if h["destination"] == destination:
                    del self.webhooks[hid]
                    return True
            return False

    def set_webhook_disabled(self, hook_id: int, disabled: bool) -> dict[str, Any]:
        with self.lock:
            h = self.webhooks.get(int(hook_id))
            if h is None:
                raise SandboxError("webhook not found", 404)
            h["disabled"] = bool(disabled)
            h["disabled_at"] = self.now() if disabled else None
            if not disabled:
                h["invalid"].clear()
            h["updated_at"] = self.now()
            return self.webhook_json(h)

    # ------------------------------------------------------------------------- deliveries --
    def emit_talk_event(self, event: str, talks: list[dict[str, Any]], destination: str | None = None,
                        times: int = 1) -> list[dict[str, Any]]:
        """Deliver one body holding *talks* to every enabled hook subscribed to *event*
        (or to *destination* only), *times* times each.  Returns the delivery records."""
        if event not in EVENT_TO_KEY or EVENT_TO_KEY[event][0] != "talk":
            raise SandboxError(f"not a talk event: {event!r}")
        if not talks:
            return []
        account = self.account_ref()
        body = encode_body(encode_talk_events(event, talks, account))
        talk_ids = [t.get("talk_id") for t in talks]
        jobs = []
        with self.lock:
            if destination:
                targets = [(None, destination)]
            else:
                hooks = sorted(self.webhooks.values(), key=lambda h: (h["sort"], h["id"]))
                targets = [(h["id"], h["destination"]) for h in hooks if not h["disabled"] and event in h["settings"]]
            for hook_id, url in targets:
                for _ in range(max(1, int(times))):
                    jobs.append(self._new_delivery_locked(hook_id, url, event, body, talk_ids, attempt=1))
        self.deliverer.submit(jobs)
        with self.lock:
            return [copy.deepcopy(j) for j in jobs]

    def _new_delivery_locked(self, hook_id: int | None, url: str, event: str, body: str,
                             talk_ids: list[Any], attempt: int) -> dict[str, Any]:
        rec = {
            "id": self._next_id("delivery"), "hook_id": hook_id, "destination": url, "event": event,
            "talk_ids": list(talk_ids), "body": body, "attempt": attempt, "status": "pending",
            "status_code": None, "error": None, "valid": None, "duration_ms": None,
            "created_at": self.now_f(), "sent_at": None,
        }
        self.deliveries.append(rec)
        if len(self.deliveries) > MAX_DELIVERIES_KEPT:
            del self.deliveries[: len(self.deliveries) - MAX_DELIVERIES_KEPT]
        return rec

    def _delivery_result(self, rec: dict[str, Any], status_code: int | None, error: str | None,
                         duration: float) -> tuple[int, float] | None:
        """Record one attempt's outcome (called by the deliverer).  Returns (code, delay) of a retry or None."""
        with self.lock:
            valid = status_code is not None and 100 <= status_code <= 299 and error is None
            rec.update(status="done", status_code=status_code, error=error, valid=valid,
                       duration_ms=round(duration * 1000, 1), sent_at=self.now_f())
            self.stats["webhook_deliveries"] += 1
            h = self.webhooks.get(rec["hook_id"]) if rec["hook_id"] is not None else None
            if h is not None and h["destination"] == rec["destination"]:
                now = self.now_f()
                window = self.settings["webhook_disable_window"]
                inv = h["invalid"]
                while inv and inv[0] <= now - window:
                    inv.popleft()
                if valid:
                    h["last_valid"] = now
                else:
                    inv.append(now)
                    if len(inv) > self.settings["webhook_disable_threshold"] and not h["disabled"]:
                        h["disabled"] = True
                        h["disabled_at"] = int(now)
            if valid or not self.settings["webhook_retries"]:
                return None
            code = status_code or 0
            nxt = rec["attempt"] + 1
            delays = {2: 300, 3: 900, 4: 900, 5: 3600}
            if nxt in (2, 3) or (nxt in (4, 5) and (code == 499 or 500 <= code <= 599)):
                return code, delays[nxt] * self.settings["webhook_retry_scale"]
            return None

    def _retry_job(self, rec: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            if rec["hook_id"] is not None:
                h = self.webhooks.get(rec["hook_id"])
                if h is None or h["disabled"] or rec["event"] not in h["settings"]:
                    return None
            return self._new_delivery_locked(rec["hook_id"], rec["destination"], rec["event"], rec["body"],
                                             rec["talk_ids"], rec["attempt"] + 1)

    def list_deliveries(self, destination: str | None = None, event: str | None = None,
                        since_id: int = 0) -> list[dict[str, Any]]:
        with self.lock:
            out = [d for d in self.deliveries if d["id"] > since_id]
            if destination:
                out = [d for d in out if d["destination"] == destination]
            if event:
                out = [d for d in out if d["event"] == event]
            return copy.deepcopy(out)

    def clear_deliveries(self) -> None:
        with self.lock:
            self.deliveries.clear()

    def send_talk_events(self, event: str = "update_talk", talk_ids: list[Any] | None = None,
                         talks: list[dict[str, Any]] | None = None, destination: str | None = None,
                         times: int = 1) -> list[dict[str, Any]]:
        """Control: (re)send the current state of *talk_ids* (and/or arbitrary *talks*) in ONE body."""
        items: list[dict[str, Any]] = []
        with self.lock:
            for tid in talk_ids or []:
                t = self.talks.get(int(tid))
                if t is None:
                    raise SandboxError(f"unknown talk {tid}", 404)
                items.append(self.talk_json(t))
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
        return self.emit_talk_event(event, items, destination=destination, times=times)
