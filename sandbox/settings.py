"""The sandbox knobs: names, types, defaults and validation (stdlib only)."""

from __future__ import annotations

from typing import Any

# name: (kind, default, description)
SETTINGS_SCHEMA: dict[str, tuple[str, Any, str]] = {
    # --- the account this server emulates -----------------------------------------------
    "account_id": ("int", 31415926, "amoCRM account id"),
    "account_name": ("str", "Песочница Chatsource", "account name (consent page, /api/v4/account)"),
    "subdomain": ("str", "sandbox", "account subdomain"),
    "account_host": ("optstr", None, "host:port used as OAuth `referer` and in links; None = the Host of the first request"),
    "account_scheme": ("str", "http", "scheme of account[_links][self] and of _links hrefs"),
    "current_user_id": ("int", 8123456, "user id behind every token"),
    "country": ("str", "RU", ""),
    "currency": ("str", "RUB", ""),
    "platform": ("int", 1, "`platform` in the OAuth redirect: 1 = amocrm.ru, 2 = kommo.com"),
    # --- OAuth ----------------------------------------------------------------------------
    "auto_approve": ("bool", False, "GET /oauth redirects at once, no consent page"),
    "code_ttl": ("int", 1200, "authorization code lifetime, s (20 min)"),
    "access_ttl": ("int", 86400, "access token lifetime, s; also `expires_in`"),
    "refresh_ttl": ("int", 7776000, "refresh token lifetime, s (3 months)"),
    "refresh_grace": ("bool", False, "Kommo rule: the old refresh token works until the new one is used"),
    "revoke_old_access_on_refresh": ("bool", False, "a refresh also kills the access tokens of the old pair"),
    "oauth_error_status": ("int", 400, "status of token-endpoint errors"),
    # --- rate limit / block -----------------------------------------------------------------
    "rate_limit": ("int", 7, "max API+token requests in any sliding window; 0 = off"),
    "rate_window": ("float", 1.0, "sliding window, s"),
    "rate_limit_count_refused": ("bool", True, "refused (429) requests also occupy the window"),
    "retry_after": ("int", 1, "Retry-After header / retry_after body field, s"),
    "rate_limit_body": ("choice:json|html", "json", "429 body: KO problem JSON or an HTML page"),
    "block_after_429s": ("int", 0, "after this many 429s answer 403 HTML until reset/unblock; 0 = never"),
    "blocked": ("bool", False, "the account is blocked (403 HTML on every API call)"),
    # --- faults ------------------------------------------------------------------------------
    "latency_ms": ("int", 0, "added to every API call"),
    "error_rate": ("float", 0.0, "fraction of API calls answered error_status"),
    "error_status": ("int", 500, "status used by error_rate"),
    "random_seed": ("int", 0, "seed of the error_rate random generator (re-seeded when set)"),
    "timeout_paths": ("list", [], "path prefixes / fnmatch patterns that hang hang_ms before answering"),
    "hang_ms": ("int", 10000, "sleep for timeout_paths"),
    "account_unpaid": ("bool", False, "402 Payment Required on API calls"),
    "missing_entity_status": ("int", 204, "GET /contacts/{id}, /leads/{id} for an unknown id: 204 (RU docs) or 404"),
    "multitext_enum_key": ("choice:enum_code|enum|both", "enum_code", "key of the enum code in PHONE/EMAIL values"),
    "nps_bot": ("bool", False, "close without force_close starts the NPS bot instead of closing"),
    "talk_event_shape": ("choice:talk.id|talk.talk_id|talk_id|entity|none", "talk.id",
                         "where talk_created/talk_closed events carry the talk id [inf: undocumented]: "
                         "value_after[0].talk.id, value_after[0].talk.talk_id, value_after[0].talk_id, only "
                         "entity_id (entity_type talk), or nowhere"),
    # --- webhooks -------------------------------------------------------------------------
    "webhook_timeout": ("float", 2.0, "delivery timeout, s"),
    "deliver_async": ("bool", False, "deliver from a background thread instead of inside the request"),
    "webhook_disable_threshold": ("int", 100, "auto-disable after MORE than this many invalid replies ..."),
    "webhook_disable_window": ("int", 7200, "... within this many seconds, the latest also invalid"),
    "webhook_retries": ("bool", False, "retry invalid deliveries on amo's schedule (5m, 15m, 15m, 1h)"),
    "webhook_retry_scale": ("float", 1.0, "multiply retry delays (e.g. 0.001 in tests)"),
    "webhook_user_agent": ("str", "amoCRM-Webhooks/3.0", "User-Agent of deliveries [inf]"),
    "max_webhooks": ("int", 100, "webhooks per account"),
    # --- misc ---------------------------------------------------------------------------------
    "clock_offset": ("float", 0.0, "seconds added to the sandbox clock (expire codes/tokens)"),
    "allow_remote_control": ("bool", False, "serve /_sandbox and / to non-loopback clients"),
    "seed": ("optstr", None, "'demo' adds a few contacts, leads and open talks"),
    "client_id": ("optstr", None, "OAuth app registered at start / on reset"),
    "client_secret": ("optstr", None, ""),
    "redirect_uri": ("optstr", None, ""),
    "client_name": ("optstr", None, ""),
}

# Settings applied by POST /_sandbox/settings that are actions, not stored values.
ACTION_SETTINGS = {"revoke"}


class SettingsError(ValueError):
    pass


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        return value.strip().lower() in ("1", "true", "yes", "on")
    raise SettingsError(f"{name}: expected a boolean, got {value!r}")


def coerce(name: str, value: Any) -> Any:
    """Validate and convert one knob value; raises SettingsError."""
    if name not in SETTINGS_SCHEMA:
        raise SettingsError(f"unknown setting: {name}")
    kind = SETTINGS_SCHEMA[name][0]
    try:
        if kind == "bool":
            return _as_bool(name, value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            if value is None or value == "":
                return 0
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "str":
            if value is None:
                raise ValueError
            return str(value)
        if kind == "optstr":
            return None if value in (None, "") else str(value)
        if kind == "list":
            if value is None or value == "":
                return []
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            if isinstance(value, (list, tuple)):
                return [str(v) for v in value]
            raise ValueError
        if kind.startswith("choice:"):
            choices = kind.split(":", 1)[1].split("|")
            if value not in choices:
                raise SettingsError(f"{name}: expected one of {choices}, got {value!r}")
            return value
    except SettingsError:
        raise
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: bad value {value!r} for type {kind}") from None
    raise SettingsError(f"{name}: unsupported kind {kind}")


def check_ranges(settings: dict[str, Any]) -> None:
    if not 0.0 <= settings["error_rate"] <= 1.0:
        raise SettingsError("error_rate must be within 0..1")
    if settings["rate_limit"] < 0:
        raise SettingsError("rate_limit must be >= 0")
    if settings["rate_window"] <= 0:
        raise SettingsError("rate_window must be > 0")
    if not 100 <= settings["error_status"] <= 599:
        raise SettingsError("error_status must be an HTTP status")
    if settings["missing_entity_status"] not in (204, 404):
        raise SettingsError("missing_entity_status must be 204 or 404")
    if settings["platform"] not in (1, 2):
        raise SettingsError("platform must be 1 or 2")
    if settings["webhook_timeout"] <= 0:
        raise SettingsError("webhook_timeout must be > 0")


def defaults() -> dict[str, Any]:
    return {name: (list(spec[1]) if isinstance(spec[1], list) else spec[1]) for name, spec in SETTINGS_SCHEMA.items()}


def merge(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in updates.items():
        out[name] = coerce(name, value)
    check_ranges(out)
    return out
