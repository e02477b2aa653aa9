"""The OpenAPI 3.1 description of Data API v1, served at `GET /api/v1/openapi.json` (no token needed).

Hand-written as Python data, next to the routes it describes. `tests/web/test_openapi.py` keeps the
two in step (every `/api/v1/` route and method is here, nothing else is) and runs schemathesis against
the app: generated requests, valid and invalid, must never get a 5xx nor an answer that breaks this
document.
"""
from __future__ import annotations

import re
from copy import deepcopy
from functools import lru_cache

from core.conditions import CONDITION_OPS, CONDITION_PARAMS
from core.maintenance import REPLAYABLE_STATUSES
from core.reports import ATTRIBUTIONS, DEFAULT_SORT, DELIMITERS, EVENT_STATUSES, SORTS

MAX_ID = 2**62


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    schema = deepcopy(schema)
    kind = schema.get("type")
    schema["type"] = [kind, "null"] if isinstance(kind, str) else list(kind) + ["null"]
    if "enum" in schema:
        schema["enum"] = list(schema["enum"]) + [None]
    return schema


def _obj(properties: dict, required: list[str] | None = None, *, closed: bool = False, **extra) -> dict:
    schema = {"type": "object", "properties": properties, **extra}
    if required is None:
        required = list(properties)
    if required:
        schema["required"] = required
    if closed:
        schema["additionalProperties"] = False
    return schema


ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
COUNT = {"type": "integer", "minimum": 0}
TEXT = {"type": "string"}
DATETIME = {"type": "string", "format": "date-time"}
DAY = {"type": "string", "format": "date"}
N_ID, N_TEXT, N_DATETIME = _nullable(ID), _nullable(TEXT), _nullable(DATETIME)
CHANNEL_LIST = {
    "type": "array", "maxItems": 50,
    "items": {"type": "string", "pattern": "^[a-z0-9_]{1,30}$"},
    "description": "«Какие каналы передавать», as the channels NOT passed (talks of them are kept as `ignored`; "
                   "a channel not listed is passed): email, site_chat, telegram, whatsapp, instagram, … "
                   "New integrations start with [\"email\"].",
}
MOMENT_TEXT = ("ISO 8601 date (`2026-11-24`, a whole local day) or date-time (`2026-11-24T10:00:00+03:00`); "
               "without an offset it is in `tz`.")

SCHEMAS: dict[str, dict] = {
    "WebhookRotation": _obj({
        "webhook_url": {"type": "string", "description": "the new url to give amoCRM; the old one is dead"},
        "connected": {"type": "boolean", "description": "whether amoCRM was asked to switch to the new url"},
        "webhook_registered": {"type": "boolean", "description": "the new url is subscribed in amoCRM"},
        "old_hooks_deleted": COUNT,
        "amocrm_error": _nullable({"type": "string", "description": "amoCRM's refusal: register the webhook again"}),
    }, closed=True),
    "Error": _obj({
        "error": _obj({
            "code": {"type": "string", "description": "machine-readable, e.g. `unauthorized`, `bad_parameter`, `invalid`, `not_found`"},
            "message": {"type": "string", "description": "what is wrong and how to fix it"},
            "field": {"type": ["string", "null"], "description": "the parameter or body field at fault"},
            "missing": {"type": "array", "items": TEXT, "description": "what to do before activating (cannot_activate)"},
        }, ["code", "message"]),
    }),
    "Condition": _obj({
        "param": {"type": "string", "enum": list(CONDITION_PARAMS)},
        "op": {"type": "string", "enum": list(CONDITION_OPS)},
        "value": TEXT,
        "exclude": {"type": "boolean"},
    }, ["param", "op", "value"]),
    "Conditions": {"type": "array", "description": "groups joined by OR; the conditions of a group by AND",
                   "items": {"type": "array", "items": _ref("Condition")}},
    "Site": _obj({"id": ID, "name": TEXT, "domain": TEXT, "site_key": TEXT}),
    "SiteCreate": _obj({"name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "domain": {"type": "string", "description": "example.ru (a scheme, www. and a path are dropped)"}}),
    "Source": _obj({"id": ID, "name": TEXT, "priority": COUNT, "conditions": _ref("Conditions")}),
    "SourceCreate": _obj({"name": {"type": "string", "minLength": 1, "maxLength": 200},
                          "priority": {"type": ["integer", "null"], "minimum": 0, "maximum": 1_000_000, "description": "lower goes first; null or absent = 100"},
                          "conditions": _nullable(_ref("Conditions"))}, ["name"]),
    "Campaign": _obj({"id": ID, "name": TEXT, "site_id": ID, "priority": COUNT, "conditions": _ref("Conditions")}),
    "CampaignCreate": _obj({"name": {"type": "string", "minLength": 1, "maxLength": 200}, "site_id": ID,
                            "priority": {"type": ["integer", "null"], "minimum": 0, "maximum": 1_000_000, "description": "null or absent = 100"},
                            "conditions": _nullable(_ref("Conditions"))}, ["name", "site_id"]),
    "SessionCreate": _obj({
        "site_id": ID,
        "started_at": _nullable(DATETIME),
        **{name: N_TEXT for name in ("visitor_id", "entrance_page", "referrer", "utm_source", "utm_medium", "utm_campaign",
                                     "utm_term", "utm_content", "gclid", "yclid", "fbclid")},
        "click_ids": {"type": ["object", "null"], "additionalProperties": TEXT},
    }, ["site_id"], closed=True),
    "VisitorSession": _obj({
        "id": ID, "site_id": ID, "visitor_id": N_TEXT, "started_at": N_DATETIME,
        **{name: N_TEXT for name in ("entrance_page", "referrer", "referrer_domain", "search_engine", "search_query",
                                     "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
                                     "gclid", "yclid", "fbclid")},
        "channel": TEXT, "campaign_id": N_ID, "source_id": N_ID,
    }),
    "MessengerMapping": _obj({"origin": {"type": "string", "minLength": 1, "maxLength": 100},
                              "campaign_id": N_ID, "source_id": N_ID, "site_id": N_ID}, ["origin"]),
    "IntegrationSettings": _obj({
        "name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Название авторизации"},
        "amocrm_url": {"type": "string", "description": "AmoCRM URL, e.g. https://mycompany.amocrm.ru"},
        "token_url": {"type": "string", "description": "Token URL, e.g. https://mycompany.amocrm.ru/oauth2/access_token"},
        "client_id": TEXT,
        "client_secret": {"type": "string", "writeOnly": True},
        "session_field_id": _nullable(ID),
        "session_field_name": N_TEXT,
        "session_field_entity": {"type": "string", "enum": ["leads", "contacts"]},
        "traffic_type": {"type": "string", "enum": ["campaign", "source_site"]},
        "default_campaign_id": N_ID, "default_source_id": N_ID, "default_site_id": N_ID,
        "messenger_mappings": {"type": "array", "items": _ref("MessengerMapping")},
        "excluded_channels": CHANNEL_LIST,
        "is_active": {"type": "boolean", "description": "activating checks that everything needed is set (422 `cannot_activate` lists what is missing)"},
    }, [], closed=True),
    "Warning": _obj({
        "code": {"type": "string", "enum": ["needs_reauth", "webhook_disabled", "webhook_missing", "refresh_token_old",
                                            "backlog", "events_failed", "default_spike", "last_error", "no_worker"],
                 "description": "no_worker: events wait and no worker consumes the queue (integration_id is null)"},
        "severity": {"type": "string", "enum": ["error", "warning"]},
        "integration_id": N_ID, "integration_name": N_TEXT,
        "params": {"type": "object"},
        "template": {"type": "string", "description": "English msgid with %(name)s placeholders"},
        "message": {"type": "string", "description": "English"},
        "message_ru": {"type": "string", "description": "Russian"},
    }),
    "Integration": _obj({
        "id": ID, "name": TEXT, "amocrm_url": TEXT, "token_url": TEXT, "client_id": TEXT,
        "client_secret_set": {"type": "boolean"},
        "status": {"type": "string", "enum": ["new", "connected", "needs_reauth"]},
        "account": _nullable(_obj({"id": N_ID, "subdomain": N_TEXT, "name": N_TEXT})),
        "token_expires_at": N_DATETIME,
        "webhook_url": {"type": "string", "description": "«Webhook url»: set it in amoCRM for «Беседа изменена» if it was not registered automatically"},
        "webhook_registered": {"type": "boolean"},
        "session_field_id": N_ID, "session_field_name": N_TEXT,
        "session_field_entity": {"type": "string", "enum": ["leads", "contacts"]},
        "traffic_type": {"type": "string", "enum": ["campaign", "source_site"]},
        "default_campaign_id": N_ID, "default_source_id": N_ID, "default_site_id": N_ID,
        "messenger_mappings": {"type": "array", "items": _ref("MessengerMapping")},
        "excluded_channels": CHANNEL_LIST,
        "is_active": {"type": "boolean"},
        "last_error": N_TEXT, "last_event_at": N_DATETIME,
        "site_script": _nullable({"type": "string", "description": "«Скрипт для вашего сайта», once the session field is chosen"}),
        "warnings": {"type": "array", "items": _ref("Warning")},
    }),
    "CustomField": _obj({"id": {"type": "integer"}, "name": N_TEXT, "type": N_TEXT, "code": N_TEXT,
                         "entity": {"type": "string", "enum": ["leads", "contacts"]}}),
    "Request": _obj({
        "id": ID, "integration_id": ID, "integration_name": N_TEXT,
        "talk_id": {"type": "integer"}, "chat_id": N_TEXT, "origin": N_TEXT,
        "channel": {"type": "string", "description": "site_chat, telegram, whatsapp, instagram, facebook, vk, viber, avito, tiktok, email, sms, apple_messages, other, unknown…"},
        "contact_name": N_TEXT, "phone": _nullable({"type": "string", "description": "E.164 when it parses, e.g. +79151234567"}),
        "phone_raw": _nullable({"type": "string", "description": "the phone exactly as amoCRM held it (`phone` is its E.164 reading)"}),
        "email": N_TEXT, "created_at": DATETIME, "closed_at": N_DATETIME,
        "session_id": N_ID, "visitor_id": N_TEXT,
        "site_id": N_ID, "site_name": N_TEXT, "campaign_id": N_ID, "campaign_name": N_TEXT,
        "source_id": N_ID, "source_name": N_TEXT,
        **{name: N_TEXT for name in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer", "entrance_page")},
        "attribution": {"type": "string", "enum": list(ATTRIBUTIONS)},
        "attribution_reason": TEXT,
        "amo_lead_id": _nullable({"type": "integer"}), "amo_contact_id": _nullable({"type": "integer"}),
        "amo_lead_url": _nullable({"type": "string", "description": "{amoCRM}/leads/detail/{id}"}),
        "amo_contact_url": _nullable({"type": "string", "description": "{amoCRM}/contacts/detail/{id}"}),
        "is_repeat": {"type": "boolean", "description": "the contact (amoCRM contact, else phone, else e-mail) made a request "
                                                        "within the account's repeat window (30 days unless changed) before this one"},
        "first_request_id": _nullable({"type": "integer", "description": "a repeat request's first request of the series; null when new"}),
    }),
    "RequestList": _obj({
        "data": {"type": "array", "items": _ref("Request")},
        "total": COUNT,
        "next_cursor": _nullable({"type": "string", "description": "pass as `cursor` for the next page; null on the last"}),
    }),
    "Event": _obj({
        "id": ID, "integration_id": ID, "talk_id": _nullable({"type": "integer"}), "action": TEXT,
        "status": {"type": "string", "enum": list(EVENT_STATUSES)},
        "status_reason": N_TEXT, "attempts": COUNT, "error": N_TEXT, "received_at": DATETIME,
        "processed_at": N_DATETIME, "request_id": N_ID, "replay_run_id": N_ID,
    }),
    "ReplayFilter": _obj({
        "integration_id": _nullable(ID),
        "date_from": _nullable({"type": "string", "description": "received from (inclusive). " + MOMENT_TEXT}),
        "date_till": _nullable({"type": "string", "description": "received until (inclusive). " + MOMENT_TEXT}),
        "statuses": {"type": ["array", "null"], "minItems": 1, "items": {"type": "string", "enum": list(REPLAYABLE_STATUSES)},
                     "description": "default (missing or null): failed and parked"},
        "tz": {"type": ["string", "null"], "description": "IANA time zone of dates without an offset; default Europe/Moscow"},
    }, [], closed=True),
    "ReplayQueued": _obj({
        "replay_id": _nullable({**ID, "description": "null when nothing matched"}),
        "queued": COUNT,
        "skipped": {"type": "object", "additionalProperties": COUNT,
                    "description": "not_closed, needs_reauth, integration_inactive: events left as they were"},
        "progress_url": N_TEXT,
    }),
    "ReplayProgress": _obj({
        "id": ID, "created_at": DATETIME, "requested_by": N_TEXT,
        "filter": _obj({"integration_id": N_ID, "statuses": {"type": "array", "items": TEXT},
                        "date_from": N_DATETIME, "date_till": N_DATETIME}),
        "total": COUNT, "skipped": {"type": "object", "additionalProperties": COUNT},
        "counts": {"type": "object", "additionalProperties": COUNT, "description": "the run's events by status now"},
        "pending": COUNT, "done": COUNT, "failed": COUNT, "finished": {"type": "boolean"},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
    }),
    "BackfillRequest": _obj({
        "date_from": {"type": "string", "description": "read from (inclusive), not in the future. " + MOMENT_TEXT},
        "date_till": _nullable({"type": "string", "description": "read until (inclusive); later than now (or missing) "
                                                               "means now; at most 90 days after date_from. " + MOMENT_TEXT}),
        "tz": {"type": ["string", "null"], "description": "IANA time zone of dates without an offset; default Europe/Moscow"},
    }, ["date_from"], closed=True),
    "Backfill": _obj({
        "id": ID, "backfill_id": ID, "integration_id": ID,
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
        "date_from": DATETIME, "date_till": DATETIME,
        "reached": _nullable({**DATETIME, "description": "read up to here (the period is read oldest first)"}),
        "pages": COUNT, "events": {**COUNT, "description": "talk_closed events read"},
        "talks_found": COUNT,
        "already_recorded": {**COUNT, "description": "talks a request or a webhook already had"},
        "recovered": {**COUNT, "description": "closed talks no webhook reported, queued to become requests"},
        "not_closed": COUNT, "not_found": COUNT,
        "unreadable": {**COUNT, "description": "talk_closed events whose talk id could not be read"},
        "error": N_TEXT, "requested_by": N_TEXT, "created_at": DATETIME, "started_at": N_DATETIME,
        "finished_at": N_DATETIME, "finished": {"type": "boolean"},
        "progress": {"type": "number", "minimum": 0, "maximum": 1}, "progress_url": TEXT,
    }),
    "Series": _obj({
        "id": _nullable({"type": "integer"}),
        "key": {"type": "string", "description": "the id, `none` (requests without one) or `other` (the smaller series summed)"},
        "label": TEXT, "total": COUNT, "per_day": {"type": "array", "items": COUNT}, "merged": COUNT,
    }, ["key", "label", "total", "per_day"]),
    "AttributionCounts": _obj({k: COUNT for k in ATTRIBUTIONS}),
    "AttributionShares": _obj({k: {"type": "number", "minimum": 0, "maximum": 1} for k in ATTRIBUTIONS}),
    "IntegrationHealth": _obj({
        "id": ID, "name": TEXT, "status": TEXT, "is_active": {"type": "boolean"}, "account_name": N_TEXT,
        "token_expires_at": N_DATETIME, "token_refreshed_at": N_DATETIME,
        "refresh_token_age_days": _nullable(COUNT), "refresh_token_expires_at": N_DATETIME,
        "webhook_registered": {"type": "boolean"}, "webhook_registered_at": N_DATETIME,
        "webhook_disabled": {"type": "boolean"}, "webhook_checked_at": N_DATETIME,
        "backlog": _obj({k: COUNT for k in ("received", "processing", "parked", "failed")}),
        "oldest_pending_at": N_DATETIME, "last_error": N_TEXT, "last_error_at": N_DATETIME,
        "last_event_at": N_DATETIME, "last_request_at": N_DATETIME,
        "reconciliation": _obj({
            "last_run_at": _nullable({**DATETIME, "description": "last reconciliation with amoCRM's event log"}),
            "recovered_last_run": COUNT,
            "recovered_total": {**COUNT, "description": "closed chats found that no webhook reported"},
            "unreadable_total": {**COUNT, "description": "talk_closed events whose talk id could not be read"},
            "last_error": N_TEXT,
        }),
    }),
    "Dashboard": _obj({
        "range": _obj({"date_from": DAY, "date_till": DAY, "tz": TEXT, "days": COUNT,
                       "previous_from": DAY, "previous_till": DAY}),
        "integration_id": N_ID,
        "days": {"type": "array", "items": DAY},
        "total": COUNT,
        "by_channel": {"type": "array", "items": _ref("Series")},
        "by_campaign": {"type": "array", "items": _ref("Series")},
        "by_source": {"type": "array", "items": _ref("Series")},
        "attribution": _obj({
            "total": COUNT, "counts": _ref("AttributionCounts"), "shares": _ref("AttributionShares"),
            "labels": {"type": "object", "additionalProperties": TEXT},
            "per_day": {"type": "object", "additionalProperties": {"type": "array", "items": COUNT}},
            "previous": _obj({"total": COUNT, "counts": _ref("AttributionCounts"), "shares": _ref("AttributionShares")}),
        }),
        "integrations": {"type": "array", "items": _ref("IntegrationHealth")},
        "warnings": {"type": "array", "items": _ref("Warning")},
        "repeat": _obj({"new": COUNT, "repeat": COUNT, "repeat_share": {"type": "number"},
                        "window_days": {"type": "integer", "description": "the account's repeat window"}}),
    }),
}


def _list_of(name: str) -> dict:
    return _obj({"data": {"type": "array", "items": _ref(name)}, "total": COUNT})


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


RESPONSES = {
    "BadRequest": _error("a query parameter or the JSON body is malformed (`field` names it)"),
    "Unauthorized": _error("no token, or an unknown or revoked one"),
    "NotFound": _error("no such object in this account"),
    "Conflict": _error("the object is in a state that does not allow this now"),
    "Unprocessable": _error("the body is well-formed but a value is not acceptable (`field` names it)"),
    "Unavailable": _error("the database is unavailable; try again shortly"),
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(name: str, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": _ref(name)}}}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": ID, "description": description}


PAGING = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}, "rows per page"),
    _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0}, "rows to skip"),
]
TZ = _query("tz", {"type": "string", "default": "Europe/Moscow"}, "IANA time zone for dates without an offset and for the CSV's times")
REQUEST_FILTERS = [
    _query("date_from", TEXT, "created from (inclusive). " + MOMENT_TEXT),
    _query("date_till", TEXT, "created until (inclusive). " + MOMENT_TEXT),
    _query("integration_id", ID, "one integration"),
    _query("channel", {"type": "string", "maxLength": 30}, "site_chat, telegram, whatsapp, …"),
    _query("campaign_id", {"type": "string", "pattern": "^([1-9][0-9]{0,17}|none)$"}, "an ad campaign id, or `none`"),
    _query("source_id", {"type": "string", "pattern": "^([1-9][0-9]{0,17}|none)$"}, "a source id, or `none`"),
    _query("site_id", {"type": "string", "pattern": "^([1-9][0-9]{0,17}|none)$"}, "a site id, or `none`"),
    _query("attribution", {"type": "string", "enum": list(ATTRIBUTIONS)}, "how the request was attributed"),
    _query("is_repeat", {"type": "string", "enum": ["true", "false"]}, "repeat requests only (true) or new ones only (false)"),
    _query("q", {"type": "string", "maxLength": 200},
           "search in the contact's name, email and phone; a phone matches however it is typed (8 915 123, +7 (915) 123, 915123)"),
    _query("sort", {"type": "string", "enum": [p + k for k in SORTS for p in ("", "-")], "default": DEFAULT_SORT},
           "column, `-` for descending; ties are broken by id"),
    TZ,
]


def _op(summary: str, responses: dict, *, tags: list[str], parameters: list | None = None, body: dict | None = None,
        errors: tuple[str, ...] = (), description: str | None = None, public: bool = False) -> dict:
    op = {"summary": summary, "tags": tags, "responses": dict(responses)}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = body
    codes = {"BadRequest": "400", "Unauthorized": "401", "NotFound": "404", "Conflict": "409",
             "Unprocessable": "422", "Unavailable": "503"}
    for name in errors + (() if public else ("BadRequest", "Unauthorized", "Unavailable")):
        op["responses"].setdefault(codes[name], {"$ref": f"#/components/responses/{name}"})
    if public:
        op["security"] = []
    return op


def _paths() -> dict:
    created = lambda name: {"201": _json(_ref(name), "created")}  # noqa: E731
    ok = lambda schema, text="OK": {"200": _json(schema, text)}  # noqa: E731
    return {
        "/api/v1/openapi.json": {"get": _op("This document", ok({"type": "object"}, "OpenAPI 3.1"), tags=["meta"], public=True)},
        "/api/v1/sites": {
            "get": _op("List sites", ok(_list_of("Site")), tags=["catalog"], parameters=PAGING),
            "post": _op("Create a site", created("Site"), tags=["catalog"], body=_body("SiteCreate"), errors=("Unprocessable",)),
        },
        "/api/v1/sources": {
            "get": _op("List sources", ok(_list_of("Source")), tags=["catalog"], parameters=PAGING),
            "post": _op("Create a source", created("Source"), tags=["catalog"], body=_body("SourceCreate"), errors=("Unprocessable",)),
        },
        "/api/v1/campaigns": {
            "get": _op("List ad campaigns", ok(_list_of("Campaign")), tags=["catalog"], parameters=PAGING),
            "post": _op("Create an ad campaign", created("Campaign"), tags=["catalog"], body=_body("CampaignCreate"),
                        errors=("Unprocessable",)),
        },
        "/api/v1/sessions": {
            "post": _op("Record a visitor session", created("VisitorSession"), tags=["sessions"], body=_body("SessionCreate"),
                        errors=("Unprocessable",),
                        description="The ad campaign and source are resolved by the rules. A bot's user agent gets 422 `bot`."),
        },
        "/api/v1/sessions/{session_id}": {
            "get": _op("Read a visitor session", ok(_ref("VisitorSession")), tags=["sessions"],
                       parameters=[_path("session_id", "session id")], errors=("NotFound",)),
        },
        "/api/v1/integrations": {
            "get": _op("List integrations", ok(_list_of("Integration")), tags=["integrations"]),
            "post": _op("Create an integration", created("Integration"), tags=["integrations"],
                        body={"required": True, "content": {"application/json": {"schema": {
                            "allOf": [_ref("IntegrationSettings"), {"required": ["name"]}]}}}},
                        errors=("Unprocessable",)),
        },
        "/api/v1/integrations/{integration_id}": {
            "get": _op("Read an integration, with its warnings", ok(_ref("Integration")), tags=["integrations"],
                       parameters=[_path("integration_id", "integration id")], errors=("NotFound",)),
            "patch": _op("Change an integration's settings (only the fields given)", ok(_ref("Integration")),
                         tags=["integrations"], parameters=[_path("integration_id", "integration id")],
                         body=_body("IntegrationSettings"), errors=("NotFound", "Unprocessable")),
        },
        "/api/v1/integrations/{integration_id}/connect": {
            "post": _op("Start connecting to amoCRM", ok(_obj({"authorize_url": TEXT}),
                        "open authorize_url in the browser; after amoCRM's consent a signed-in admin of this "
                        "account confirms the link («Подключить») before the code is exchanged"),
                        tags=["integrations"], parameters=[_path("integration_id", "integration id")],
                        body={"required": False, "content": {"application/json": {"schema": _obj(
                            {"mode": {"type": "string", "enum": ["popup", "post_message"]}}, [])}}},
                        errors=("NotFound", "Unprocessable")),
        },
        "/api/v1/integrations/{integration_id}/webhook/rotate": {
            "post": _op("Replace the webhook url (a leaked one): the old url answers 404 at once; when connected, "
                        "the new url is registered in amoCRM and the old hook deleted",
                        ok(_ref("WebhookRotation"), "rotated; amocrm_error says when amoCRM must be told again"),
                        tags=["integrations"], parameters=[_path("integration_id", "integration id")],
                        errors=("NotFound",)),
        },
        "/api/v1/integrations/{integration_id}/custom-fields": {
            "get": _op("amoCRM lead and contact custom fields (all pages)",
                       {**ok(_list_of("CustomField")), "502": _error("amoCRM answered with an error")},
                       tags=["integrations"], parameters=[_path("integration_id", "integration id")],
                       errors=("NotFound", "Conflict")),
        },
        "/api/v1/requests": {
            "get": _op("Requests (the Raw data report)", ok(_ref("RequestList")), tags=["requests"],
                       parameters=REQUEST_FILTERS + PAGING + [_query(
                           "cursor", {"type": "string", "maxLength": 2000},
                           "keyset paging: `next_cursor` of the previous page (instead of offset; quick however deep)")]),
        },
        "/api/v1/requests.csv": {
            "get": _op("Requests as CSV (streamed)", {"200": {
                "description": "UTF-8 CSV with a BOM; headers in `lang`; cells that a spreadsheet would run as a formula start with '",
                "content": {"text/csv": {"schema": {"type": "string"}}}}},
                tags=["requests"], parameters=REQUEST_FILTERS + [
                    _query("lang", {"type": "string", "enum": ["ru", "en"], "default": "ru"}, "language of the headers and labels"),
                    _query("delimiter", {"type": "string", "enum": sorted(k for k in DELIMITERS if k.isalpha()), "default": "comma"},
                           "semicolon suits Excel with Russian regional settings"),
                ]),
        },
        "/api/v1/events": {
            "get": _op("The webhook inbox", ok(_list_of("Event")), tags=["events"], parameters=[
                _query("status", {"type": "string", "enum": list(EVENT_STATUSES)}, "only this status"),
                _query("integration_id", ID, "one integration"),
                _query("replay_id", ID, "the events of one replay run"),
            ] + PAGING),
        },
        "/api/v1/events/{event_id}/replay": {
            "post": _op("Replay one event", {"202": _json(_ref("Event"), "queued again")}, tags=["events"],
                        parameters=[_path("event_id", "event id")], errors=("NotFound", "Conflict")),
        },
        "/api/v1/events/replay": {
            "post": _op("Replay events by filter", {"202": _json(_ref("ReplayQueued"), "queued; follow progress_url")},
                        tags=["events"], body=_body("ReplayFilter", required=True), errors=("Unprocessable",),
                        description="Idempotent: events already queued are not matched again, and a talk makes one request."),
        },
        "/api/v1/replays/{replay_id}": {
            "get": _op("Progress of a replay", ok(_ref("ReplayProgress")), tags=["events"],
                       parameters=[_path("replay_id", "replay id")], errors=("NotFound",)),
        },
        "/api/v1/integrations/{integration_id}/backfill": {
            "post": _op("Backfill: find closed chats no webhook reported over a period", {"202": _json(_ref("Backfill"), "started; follow progress_url")},
                        tags=["integrations"], parameters=[_path("integration_id", "integration id")],
                        body=_body("BackfillRequest"), errors=("NotFound", "Conflict", "Unprocessable"),
                        description="Reads amoCRM's event log (`talk_closed`) over the period in the background; each closed "
                                    "talk without a request becomes one, through the same path as a webhook (one request per "
                                    "talk). 409 `not_connected` when the integration has no amoCRM connection, "
                                    "`not_active` when it is switched off."),
        },
        "/api/v1/backfills/{backfill_id}": {
            "get": _op("Progress of a backfill", ok(_ref("Backfill")), tags=["integrations"],
                       parameters=[_path("backfill_id", "backfill id")], errors=("NotFound",)),
        },
        "/api/v1/dashboard": {
            "get": _op("Dashboard: requests by day, channel, campaign and source; attribution; integration health; warnings",
                       ok(_ref("Dashboard")), tags=["dashboard"], parameters=[
                           _query("date_from", DAY, "first local day (default: 29 days before date_till)"),
                           _query("date_till", DAY, "last local day (default: today)"),
                           _query("integration_id", ID, "one integration"),
                           _query("lang", {"type": "string", "enum": ["ru", "en"], "default": "ru"}, "language of the labels"),
                           TZ,
                       ]),
        },
    }


def openapi_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Chatsource Data API",
            "version": "1",
            "description": "Finished amoCRM chats as attributed requests, and everything to set them up. "
                           "Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`; lists are "
                           "`{\"data\": [...], \"total\": n}`. A token sees only its own account.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "create one with `flask --app wsgi api-tokens create NAME`; only its hash is stored"}},
            "schemas": deepcopy(SCHEMAS),
            "responses": deepcopy(RESPONSES),
        },
    }


def document_path(rule: str) -> str:
    """A Flask rule (`/api/v1/integrations/<int:integration_id>`) as an OpenAPI path (`…/{integration_id}`)."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


@lru_cache(maxsize=None)
def _query_names() -> dict[tuple[str, str], frozenset[str]]:
    names = {}
    for path, operations in _paths().items():
        for method, operation in operations.items():
            names[(path, method.upper())] = frozenset(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")
    return names


def query_parameters(rule: str, method: str) -> frozenset[str] | None:
    """The query parameters the document gives the operation (None if the operation is not in it)."""
    return _query_names().get((document_path(rule), "GET" if method == "HEAD" else method))
