"""OAuth 2.0 of the account (§1): registered apps, authorization codes, access and refresh tokens,
their rotation, expiry and revocation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

from .account import AccountStore
from .errors import OAuthError, SandboxError
from .traffic import TrafficStore

OAUTH_PROBLEM_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class OAuthStore:
    """Apps (clients), codes and token pairs; counts code exchanges and refreshes in the traffic stats."""

    def __init__(self, lock: threading.RLock, account: AccountStore, traffic: TrafficStore) -> None:
        self.lock = lock
        self.account = account
        self.traffic = traffic
        self._jwt_key = secrets.token_bytes(32)

    def reset_locked(self) -> None:
        self.clients: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------------------ clients --
    def register_locked(self, client_id: str, client_secret: str, redirect_uri: str,
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
            return self.register_locked(client_id, client_secret, redirect_uri, name)

    def get_client(self, client_id: str | None) -> dict[str, Any] | None:
        with self.lock:
            client = self.clients.get(str(client_id)) if client_id else None
            return dict(client) if client else None

    def list_clients(self) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for c in self.clients.values():
                tokens = [t for t in self.access_tokens.values() if t["client_id"] == c["client_id"]]
                live = [t for t in tokens if not t["revoked"] and t["expires_at"] > self.account.now()]
                out.append(dict(c, access_tokens_issued=len(tokens), access_tokens_live=len(live)))
            return out

    # ------------------------------------------------------------------------ codes, tokens --
    def issue_code(self, client_id: str) -> str:
        with self.lock:
            if str(client_id) not in self.clients:
                raise SandboxError("unknown client_id", 400)
            code = "def50200" + secrets.token_hex(160)
            self.codes[code] = {"client_id": str(client_id), "created_at": self.account.now_f(), "used": False}
            return code

    def redirect_params(self, client_id: str, code: str, state: str | None) -> list[tuple[str, str]]:
        with self.lock:
            params = [("code", code), ("referer", self.account.account_host)]
            if state is not None and state != "":
                params.append(("state", state))
            params.append(("platform", str(self.account.settings["platform"])))
            params.append(("client_id", str(client_id)))
            return params

    def _make_jwt(self, client_id: str, exp: int, iat: int) -> str:
        s = self.account.settings
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
            "base_domain": self.account.account_host,
            "version": 2,
            "scopes": ["crm", "files", "files_delete", "notifications", "push_notifications"],
            "hash_uuid": str(uuid.uuid4()),
            "api_domain": self.account.account_host,
        }
        signing_input = _b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + _b64url(
            json.dumps(claims, separators=(",", ":")).encode()
        )
        sig = hmac.new(self._jwt_key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return signing_input + "." + _b64url(sig)

    def _issue_pair_locked(self, client_id: str, parent: str | None) -> dict[str, Any]:
        s = self.account.settings
        now = self.account.now()
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
            now = self.account.now_f()
            if grant_type == "authorization_code":
                code = param("code")
                rec = self.codes.get(code)
                if rec is None:
                    raise OAuthError("Cannot decrypt the authorization code")
                if rec["client_id"] != client_id:
                    raise OAuthError("Authorization code was not issued to this client")
                if rec["used"]:
                    raise OAuthError("Authorization code has been revoked")
                if now > rec["created_at"] + self.account.settings["code_ttl"]:
                    raise OAuthError("Authorization code has expired")
                rec["used"] = True
                self.traffic.count_locked("code_exchanges")
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
            if self.account.settings["refresh_grace"]:
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
            if self.account.settings["revoke_old_access_on_refresh"]:
                old = self.access_tokens.get(rec["access_token"])
                if old:
                    old["revoked"] = True
            self.traffic.count_locked("token_refreshes")
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
            if self.account.now_f() >= rec["expires_at"]:
                return "Token has expired"
            return None

    def refresh_token_account(self, token: str | None) -> dict[str, Any] | None:
        """GET /oauth2/account/current/subdomain (X-Refresh-Token)."""
        with self.lock:
            rec = self.refresh_tokens.get(token or "")
            if rec is None or rec["status"] == "revoked" or self.account.now_f() > rec["expires_at"]:
                return None
            host = self.account.account_host
            return {
                "id": self.account.settings["account_id"],
                "subdomain": self.account.settings["subdomain"],
                "domain": host,
                "top_level_domain": host.rsplit(".", 1)[-1].split(":")[0] if "." in host else "local",
            }

    def revoke_locked(self, client_id: str | None) -> int:
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
            return self.revoke_locked(client_id)
