"""Integrations: an account's amoCRM connections and their attribution settings (spec steps 1–7).

The Data API and the admin call these same functions.
"""
from __future__ import annotations

import re
from functools import partial
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.access.ownership import get_owned
from core.amocrm.errors import HostNotAllowed
from core.amocrm.hosts import ADDRESS_EMPTY, check_url
from core.amocrm.messengers import KNOWN_MESSENGERS, channel_for_origin
from core.inbox.click_attribution import MAX_WINDOW_MINUTES as MAX_CLICK_WINDOW_MINUTES
from core.models import Campaign, ChatRequest, Integration, MessengerMapping, Site, Source
from core.platform.crypto import new_token, sha256_hex
from core.platform.errors import NotFound, ValidationFailed
from core.platform.messages import N_, Message, define
from core.platform.services import Services
from core.tracking.catalog import NAME_REQUIRED, NO_SUCH_SITE

YOURDOMAIN = "YOURDOMAIN"
DEFAULT_AMOCRM_URL = f"https://{YOURDOMAIN}.amocrm.ru"
DEFAULT_TOKEN_URL = f"https://{YOURDOMAIN}.amocrm.ru/oauth2/access_token"
TRAFFIC_TYPES = ("campaign", "source_site")
FIELD_ENTITIES = ("leads", "contacts")
MAX_EXCLUDED_CHANNELS = 50
_CHANNEL_CODE = re.compile(r"[a-z0-9_]{1,30}\Z")

# What the admin says about a refused setting (`ValidationFailed.said`), in the reader's language. A
# messenger row's problem names the row by its number (`row`); `index` (0-based) lets the page name
# it by its messenger instead.
BAD_CLIENT_ID = define("integrations.bad_client_id", N_(
    "The integration ID is amoCRM's ID of your integration (Latin letters, digits and dashes, no spaces)."))
BAD_CLICK_WINDOW = define("integrations.bad_click_window", N_(
    "The click window is a whole number of minutes from 0 (off) to %(max)s."))
NO_SUCH_CAMPAIGN = define("integrations.no_such_campaign", N_("The ad campaign %(id)s does not exist in this account."))
NO_SUCH_SOURCE = define("integrations.no_such_source", N_("The source %(id)s does not exist in this account."))
MAPPING_NO_TARGET = define("integrations.mapping.no_target", N_("Messenger %(row)s: choose an ad campaign, or a source and a site."))
MAPPING_BOTH = define("integrations.mapping.both", N_("Messenger %(row)s: choose an ad campaign or a source and a site, not both."))
MAPPING_TWICE = define("integrations.mapping.twice", N_("The messenger %(origin)s is listed twice."))
MAPPING_NO_ORIGIN = define("integrations.mapping.no_origin", N_("Messenger %(row)s: enter the amoCRM origin code, e.g. telegram."))
MAPPING_NO_SUCH_ENTITY = define("integrations.mapping.no_such_entity", N_(
    "Messenger %(row)s: the chosen entity %(id)s does not exist in this account."))
# What activation still needs (`activation_problems`, `ActivationBlocked.problems`).
CONNECT_FIRST = define("integrations.activation.connect", N_("connect the amoCRM account first («Connect»)"))
RECONNECT = define("integrations.activation.reconnect", N_("reconnect the amoCRM account: its authorisation was revoked"))
CHOOSE_SESSION_FIELD = define("integrations.activation.session_field", N_(
    "choose the session custom field («Session custom field»)"))
CHOOSE_DEFAULT_CAMPAIGN = define("integrations.activation.default_campaign", N_("choose the default ad campaign («Traffic type»)"))
CHOOSE_DEFAULT_SOURCE = define("integrations.activation.default_source", N_("choose the default source («Traffic type»)"))
CHOOSE_DEFAULT_SITE = define("integrations.activation.default_site", N_("choose the default site («Traffic type»)"))


class ActivationBlocked(ValidationFailed):
    """Cannot be active yet: `problems` are what to do first (messages, see `activation_problems`),
    `missing` the same in English for the Data API."""

    def __init__(self, problems: list[Message | str]):
        self.problems = list(problems)
        self.missing = [str(p) for p in self.problems]
        super().__init__("cannot activate the integration: " + "; ".join(self.missing), "is_active")


def _new_webhook_token(integration: Integration, services: Services) -> str:
    token = new_token(32)
    integration.webhook_token_hash = sha256_hex(token)
    integration.webhook_token_enc = services.secrets.encrypt(token)
    return token


def create_integration(session: Session, services: Services, account_id: int, data: dict) -> Integration:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("name is required (Название авторизации)", "name", NAME_REQUIRED())
    integration = Integration(
        account_id=account_id,
        name=name.strip()[:200],
        amocrm_url=DEFAULT_AMOCRM_URL,
        token_url=DEFAULT_TOKEN_URL,
        client_id=services.settings.amocrm_client_id,
        client_secret_enc=services.secrets.encrypt(services.settings.amocrm_client_secret or None),
        traffic_type="campaign",
        session_field_entity="leads",
        status="new",
        is_active=False,
        token_version=0,
    )
    _new_webhook_token(integration, services)
    session.add(integration)
    session.flush()
    update_integration(session, services, integration, {k: v for k, v in data.items() if k != "name"})
    return integration


def _url(value, field: str, services: Services) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{field} is required", field, ADDRESS_EMPTY())
    value = value.strip().rstrip("/")
    if YOURDOMAIN.lower() in value.lower():
        return value  # allowed while drafting; connecting will say to replace it
    try:
        return check_url(value, services.settings.amocrm_allowed_hosts)
    except HostNotAllowed as exc:
        raise ValidationFailed(f"{field}: {exc}", field, exc.said) from exc


def _optional_owned(session, model, account_id, value, field, said=None):
    """The id of the account's row `value` (None stays None); `said(id=…)` is the message when absent."""
    if value is None:
        return None
    try:
        return get_owned(session, model, account_id, value).id
    except NotFound:
        raise ValidationFailed(f"{field}: {value} does not exist in this account", field, said(id=value) if said else None)


def update_integration(session: Session, services: Services, integration: Integration, data: dict) -> Integration:
    """PATCH semantics: only the keys given change. Activation is checked last, on the result."""
    known = {
        "name", "amocrm_url", "token_url", "client_id", "client_secret", "session_field_id", "session_field_name",
        "session_field_entity", "traffic_type", "default_campaign_id", "default_source_id", "default_site_id",
        "messenger_mappings", "excluded_channels", "click_window_minutes", "is_active",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationFailed(f"unknown or read-only field(s): {', '.join(unknown)}", unknown[0])
    account_id = integration.account_id
    if "name" in data:
        if not isinstance(data["name"], str) or not data["name"].strip():
            raise ValidationFailed("name cannot be empty", "name", NAME_REQUIRED())
        integration.name = data["name"].strip()[:200]
    if "amocrm_url" in data:
        integration.amocrm_url = _url(data["amocrm_url"], "amocrm_url", services)
    if "token_url" in data:
        integration.token_url = _url(data["token_url"], "token_url", services)
    if "client_id" in data:
        integration.client_id = _client_id(data["client_id"])
    if "client_secret" in data:
        if not isinstance(data["client_secret"], str):
            raise ValidationFailed("client_secret must be a string", "client_secret")
        integration.client_secret_enc = services.secrets.encrypt(data["client_secret"].strip() or None)
    if "session_field_entity" in data:
        if data["session_field_entity"] not in FIELD_ENTITIES:
            raise ValidationFailed("session_field_entity must be 'leads' or 'contacts'", "session_field_entity")
        integration.session_field_entity = data["session_field_entity"]
    if "session_field_id" in data:
        value = data["session_field_id"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ValidationFailed("session_field_id must be an amoCRM custom field id (a positive number) or null", "session_field_id")
        integration.session_field_id = value
    if "session_field_name" in data:
        if data["session_field_name"] is not None and not isinstance(data["session_field_name"], str):
            raise ValidationFailed("session_field_name must be text or null", "session_field_name")
        integration.session_field_name = (data["session_field_name"] or None) and data["session_field_name"][:300]
    if "traffic_type" in data:
        if data["traffic_type"] not in TRAFFIC_TYPES:
            raise ValidationFailed("traffic_type must be 'campaign' or 'source_site'", "traffic_type")
        integration.traffic_type = data["traffic_type"]
    if "default_campaign_id" in data:
        integration.default_campaign_id = _optional_owned(session, Campaign, account_id, data["default_campaign_id"], "default_campaign_id",
                                                           NO_SUCH_CAMPAIGN)
    if "default_source_id" in data:
        integration.default_source_id = _optional_owned(session, Source, account_id, data["default_source_id"], "default_source_id",
                                                         NO_SUCH_SOURCE)
    if "default_site_id" in data:
        integration.default_site_id = _optional_owned(session, Site, account_id, data["default_site_id"], "default_site_id",
                                                       NO_SUCH_SITE)
    if "messenger_mappings" in data:
        set_mappings(session, integration, data["messenger_mappings"])
    if "excluded_channels" in data:
        integration.excluded_channels = _channels(data["excluded_channels"])
    if "click_window_minutes" in data:
        integration.click_window_minutes = _click_window(data["click_window_minutes"])
    if "is_active" in data:
        if not isinstance(data["is_active"], bool):
            raise ValidationFailed("is_active must be true or false", "is_active")
        if data["is_active"]:
            missing = activation_problems(session, integration)
            if missing:
                raise ActivationBlocked(missing)
        integration.is_active = data["is_active"]
    session.flush()
    return integration


def _client_id(raw) -> str:
    """amoCRM's integration ID (a UUID): it travels in the X-Client-UUID header of every API call, so
    only visible ASCII can be sent (anything else would fail every call, not just this form)."""
    if not isinstance(raw, str):
        raise ValidationFailed("client_id must be a string", "client_id")
    value = raw.strip()
    if not value or len(value) > 200 or not all("!" <= ch <= "~" for ch in value):
        raise ValidationFailed("client_id is amoCRM's integration ID, e.g. 1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718: "
                               "Latin letters, digits and dashes, no spaces", "client_id", BAD_CLIENT_ID())
    return value


def _click_window(raw) -> int:
    """Minutes before a messenger chat in which a click on its button on the site counts (0 = off)."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_CLICK_WINDOW_MINUTES:
        raise ValidationFailed(f"click_window_minutes must be a whole number of minutes from 0 (off) to "
                               f"{MAX_CLICK_WINDOW_MINUTES}", "click_window_minutes",
                               BAD_CLICK_WINDOW(max=MAX_CLICK_WINDOW_MINUTES))
    return raw


def _channels(raw) -> list[str]:
    if not isinstance(raw, list) or len(raw) > MAX_EXCLUDED_CHANNELS:
        raise ValidationFailed(f"excluded_channels must be a list (at most {MAX_EXCLUDED_CHANNELS}) of channel codes such as "
                               "email, site_chat, telegram", "excluded_channels")
    for value in raw:
        if not isinstance(value, str) or not _CHANNEL_CODE.match(value):
            raise ValidationFailed(f"excluded_channels: {str(value)[:40]!r} is not a channel code (lower-case letters, "
                                   "digits and _, e.g. email)", "excluded_channels")
    return sorted(set(raw))


def channel_choices(session: Session, integration: Integration) -> list[str]:
    """The channels «Какие каналы передавать» offers: the known ones, then every other channel this
    integration has received (an unknown origin is "other"), then any excluded one not among them."""
    known = list(dict.fromkeys(["site_chat"] + [m.channel for m in KNOWN_MESSENGERS if m.channel != "other"]))
    seen = [channel_for_origin(origin) for origin in seen_origins(session, integration.id)]
    recent = (sa.select(ChatRequest.channel).where(ChatRequest.integration_id == integration.id)
              .order_by(ChatRequest.id.desc()).limit(20_000).subquery())  # cheap on a large table
    recorded = session.scalars(sa.select(recent.c.channel).distinct().limit(100))
    return list(dict.fromkeys(known + seen + [c for c in recorded if c] + list(integration.excluded_channels or [])))


def set_mappings(session: Session, integration: Integration, raw) -> None:
    if not isinstance(raw, list):
        raise ValidationFailed("messenger_mappings must be a list of {origin, campaign_id | source_id + site_id}", "messenger_mappings")
    seen = {}
    for i, item in enumerate(raw):
        where = f"messenger_mappings[{i}]"
        row = {"row": str(i + 1), "index": i}
        absent = partial(MAPPING_NO_SUCH_ENTITY, **row)
        if not isinstance(item, dict):
            raise ValidationFailed(f"{where} must be an object", "messenger_mappings")
        origin = item.get("origin")
        if not isinstance(origin, str) or not origin.strip() or len(origin) > 100:
            raise ValidationFailed(f"{where}.origin is required (the amoCRM talk origin, e.g. telegram)", "messenger_mappings",
                                   MAPPING_NO_ORIGIN(**row))
        origin = origin.strip()
        if origin in seen:
            raise ValidationFailed(f"{where}: origin {origin!r} is mapped twice", "messenger_mappings",
                                   MAPPING_TWICE(origin=repr(origin), **row))
        campaign_id = _optional_owned(session, Campaign, integration.account_id, item.get("campaign_id"), f"{where}.campaign_id",
                                      absent)
        source_id = _optional_owned(session, Source, integration.account_id, item.get("source_id"), f"{where}.source_id",
                                    absent)
        site_id = _optional_owned(session, Site, integration.account_id, item.get("site_id"), f"{where}.site_id",
                                  absent)
        if not campaign_id and not (source_id and site_id):
            raise ValidationFailed(f"{where}: give a campaign_id, or a source_id and a site_id", "messenger_mappings",
                                   MAPPING_NO_TARGET(**row))
        if campaign_id and (source_id or site_id):
            raise ValidationFailed(f"{where}: give a campaign_id or a source + site, not both", "messenger_mappings",
                                   MAPPING_BOTH(**row))
        seen[origin] = (campaign_id, source_id, site_id)
    existing = {m.origin: m for m in integration.mappings}
    for origin, mapping in existing.items():
        if origin not in seen:
            integration.mappings.remove(mapping)
    for origin, (campaign_id, source_id, site_id) in seen.items():
        mapping = existing.get(origin)
        if mapping is None:
            mapping = MessengerMapping(account_id=integration.account_id, origin=origin)
            integration.mappings.append(mapping)
        mapping.campaign_id, mapping.source_id, mapping.site_id = campaign_id, source_id, site_id


def activation_problems(session: Session, integration: Integration) -> list[Message]:
    """What the integration still needs before it can be active (none: it can)."""
    missing = []
    if integration.status != "connected" or not integration.access_token_enc:
        missing.append(CONNECT_FIRST() if integration.status != "needs_reauth" else RECONNECT())
    if not integration.session_field_id:
        missing.append(CHOOSE_SESSION_FIELD())
    if integration.traffic_type == "campaign":
        if not integration.default_campaign_id:
            missing.append(CHOOSE_DEFAULT_CAMPAIGN())
    else:
        if not integration.default_source_id:
            missing.append(CHOOSE_DEFAULT_SOURCE())
        if not integration.default_site_id:
            missing.append(CHOOSE_DEFAULT_SITE())
    return missing


def get_integration(session: Session, account_id: int, integration_id) -> Integration:
    """A deleted integration is not found: only its requests stay (core.integrations.removal)."""
    integration = get_owned(session, Integration, account_id, integration_id)
    if integration.deleted_at is not None:
        raise NotFound(f"integration {integration_id} not found")
    return integration


def list_integrations(session: Session, account_id: int) -> list[Integration]:
    return list(session.scalars(sa.select(Integration).where(Integration.account_id == account_id,
                                                             Integration.deleted_at.is_(None)).order_by(Integration.id)))


def webhook_url(services: Services, integration: Integration) -> str:
    return services.webhook_url(services.secrets.decrypt(integration.webhook_token_enc))


def webhook_url_forms(url: str) -> tuple[str, str]:
    """The url as we show and register it (trailing slash), then as integrations registered before
    it had one: amoCRM keeps such hooks, and both reach the same endpoint."""
    bare = url.rstrip("/")
    return bare + "/", bare


def our_webhook(hooks: list[dict], events) -> dict | None:
    """Of the hooks found under our url's forms, the one that delivers closes: subscribed to
    `events` and enabled first, then subscribed, then any (None when there is none)."""
    def rank(hook: dict) -> tuple[bool, bool]:
        return set(events) <= set(hook.get("settings") or []), not hook.get("disabled")

    return max(hooks, key=rank, default=None)


def rotate_webhook_token(session: Session, services: Services, integration: Integration) -> str:
    """A leaked webhook url can be replaced; the old one answers 404 from then on."""
    token = _new_webhook_token(integration, services)
    integration.webhook_registered_at = None
    session.flush()
    return services.webhook_url(token)


# Spec step 7, «Скрипт для вашего сайта»: generated in core/integrations/site_script.py (tracking).
from core.integrations.site_script import site_script  # noqa: E402,F401


def to_dict(services: Services, integration: Integration) -> dict:
    return {
        "id": integration.id,
        "name": integration.name,
        "amocrm_url": integration.amocrm_url,
        "token_url": integration.token_url,
        "client_id": integration.client_id,
        "client_secret_set": bool(integration.client_secret_enc),
        "status": integration.status,
        "account": {"id": integration.amo_account_id, "subdomain": integration.amo_subdomain, "name": integration.amo_account_name}
        if integration.amo_account_id
        else None,
        "token_expires_at": integration.token_expires_at.isoformat() if integration.token_expires_at else None,
        "webhook_url": webhook_url(services, integration),
        "webhook_registered": integration.webhook_registered_at is not None,
        "session_field_id": integration.session_field_id,
        "session_field_name": integration.session_field_name,
        "session_field_entity": integration.session_field_entity,
        "traffic_type": integration.traffic_type,
        "default_campaign_id": integration.default_campaign_id,
        "default_source_id": integration.default_source_id,
        "default_site_id": integration.default_site_id,
        "messenger_mappings": [
            {"origin": m.origin, "campaign_id": m.campaign_id, "source_id": m.source_id, "site_id": m.site_id}
            for m in integration.mappings
        ],
        "excluded_channels": list(integration.excluded_channels or []),
        "click_window_minutes": integration.click_window_minutes,
        "is_active": integration.is_active,
        "last_error": integration.last_error,
        "last_event_at": integration.last_event_at.isoformat() if integration.last_event_at else None,
        "site_script": site_script(services, integration),
    }


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def custom_fields(services: Services, integration: Integration) -> list[dict]:
    """amoCRM's lead and contact custom fields (all pages), for the session-field select."""
    from core.amocrm.client import AmoCrmClient

    client = AmoCrmClient(services, integration.id)
    result = []
    for entity in FIELD_ENTITIES:
        for f in client.list_custom_fields(entity):
            result.append({"id": f.get("id"), "name": f.get("name"), "type": f.get("type"), "code": f.get("code"), "entity": entity})
    return result


def seen_origins(session: Session, integration_id: int, limit: int = 200, window: int = 20_000) -> list[str]:
    """Every talk `origin` amoCRM has sent to this integration lately (its last `window` events,
    newest first), so the admin can map messengers whose codes are undocumented (the site chat, VK,
    Viber, Avito…) from real traffic. The window keeps the query cheap on a large inbox."""
    from core.models import WebhookEvent

    recent = (
        sa.select(WebhookEvent.id, WebhookEvent.item["origin"].as_string().label("origin"))
        .where(WebhookEvent.integration_id == integration_id)
        .order_by(WebhookEvent.id.desc())
        .limit(window)
        .subquery()
    )
    rows = session.execute(
        sa.select(recent.c.origin, sa.func.max(recent.c.id).label("last"))
        .where(recent.c.origin.is_not(None), recent.c.origin != "")
        .group_by(recent.c.origin)
        .order_by(sa.desc("last"))
        .limit(limit)
    )
    return [value for value, _ in rows if value]
