"""Every request and answer of Data API v1, defined once as pydantic models.

The same models validate what a client sends (web/api/contract.py) and make the OpenAPI document
(web/api/openapi.py), so the two cannot drift apart. Request bodies are strict (a number is a number,
not "1" nor true); query strings are text by nature, so their numbers are parsed from whole-number text.
Answer models are not run on each response: schemathesis (tests/web/test_openapi.py) checks that what
the handlers send matches them.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from core.inbox import event_status
from core.reporting.csv_export import DELIMITERS
from core.reporting.report import ATTRIBUTIONS, DEFAULT_SORT, SORTS
from core.tracking.conditions import CONDITION_OPS, CONDITION_PARAMS

MAX_ID = 2**62  # no id is bigger; SQLite could not even compare it (its integers are 64-bit)
MAX_LIMIT = 500
# The webhook inbox's statuses for the document and the `status` filter, as the plain strings of
# core.inbox.event_status.EventStatus.
EVENT_STATUSES: tuple[str, ...] = tuple(status.value for status in event_status.ALL)  # core.inbox.event_status is the one source
REPLAYABLE_STATUSES: tuple[str, ...] = tuple(status.value for status in event_status.REPLAYABLE)
WARNING_CODES = ("needs_reauth", "webhook_disabled", "webhook_missing", "refresh_token_old", "backlog", "events_failed",
                 "default_spike", "last_error", "no_worker")
MOMENT_TEXT = ("ISO 8601 date (`2026-11-24`, a whole local day) or date-time (`2026-11-24T10:00:00+03:00`); "
               "without an offset it is in `tz`.")
TZ_TEXT = "IANA time zone of dates without an offset; default Europe/Moscow"

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Count = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]
DateTimeText = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
DayText = Annotated[str, Field(json_schema_extra={"format": "date"})]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Entity = Literal["leads", "contacts"]
TrafficType = Literal["campaign", "source_site"]


class Closed(BaseModel):
    """A request body that refuses fields it does not know (a typo must not be silently dropped)."""
    model_config = ConfigDict(strict=True, extra="forbid")


class Open(BaseModel):
    """A request body that ignores fields it does not know (as these endpoints always have)."""
    model_config = ConfigDict(strict=True)


class Answer(BaseModel):
    """An answer's shape, for the document."""


# --- query strings ---------------------------------------------------------------------------

_WHOLE_NUMBER = re.compile(r"^-?[0-9]{1,19}$")


def _whole_number(value: Any) -> Any:
    if isinstance(value, str):
        if not _WHOLE_NUMBER.match(value):  # ASCII digits only: int() would take "５" too
            raise ValueError("must be a whole number")
        return int(value)
    return value


QueryInt = BeforeValidator(_whole_number)
QueryId = Annotated[int, Field(ge=1, le=MAX_ID), QueryInt]  # bounds before the parser: they are the int's
OptionalId = Annotated[str, Field(pattern=r"^([1-9][0-9]{0,17}|none)$")]


class Query(BaseModel):
    """Query parameters: a parameter the model does not name is refused (400) by the contract."""
    model_config = ConfigDict(extra="forbid")


class NoQuery(Query):
    pass


class Paging(Query):
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT), QueryInt, Field(description="rows per page")] = 100
    offset: Annotated[int, Field(ge=0, le=10**9), QueryInt, Field(description="rows to skip")] = 0


class TimeZone(Query):
    tz: Annotated[str, Field(description="IANA time zone for dates without an offset and for the CSV's times")] = "Europe/Moscow"


class RequestFilters(TimeZone):
    """Read by core.reporting.report.RequestFilter.from_params, which gives them their meaning."""
    date_from: Annotated[str | None, Field(description="created from (inclusive). " + MOMENT_TEXT)] = None
    date_till: Annotated[str | None, Field(description="created until (inclusive). " + MOMENT_TEXT)] = None
    integration_id: Annotated[QueryId | None, Field(description="one integration")] = None
    channel: Annotated[str | None, Field(max_length=30, description="site_chat, telegram, whatsapp, …")] = None
    is_repeat: Annotated[Literal["true", "false"] | None, Field(
        description="repeat requests only (true) or new ones only (false)")] = None
    campaign_id: Annotated[OptionalId | None, Field(description="an ad campaign id, or `none`")] = None
    source_id: Annotated[OptionalId | None, Field(description="a source id, or `none`")] = None
    site_id: Annotated[OptionalId | None, Field(description="a site id, or `none`")] = None
    attribution: Annotated[Literal[ATTRIBUTIONS] | None, Field(description="how the request was attributed")] = None
    q: Annotated[str | None, Field(max_length=200, description=(
        "search in the contact's name, email and phone; a phone matches however it is typed (8 915 123, +7 (915) 123, 915123)"))] = None
    sort: Annotated[Literal[tuple(p + k for k in SORTS for p in ("", "-"))],
                    Field(description="column, `-` for descending; ties are broken by id")] = DEFAULT_SORT


ReasonsLang = Annotated[Literal["ru", "en"], Field(description="language of the reasons")]


class ReasonsQuery(Query):
    lang: ReasonsLang = "ru"


class RequestsQuery(RequestFilters, Paging):
    cursor: Annotated[str | None, Field(max_length=2000, description=(
        "keyset paging: `next_cursor` of the previous page (instead of offset; quick however deep)"))] = None
    lang: ReasonsLang = "ru"


Lang = Annotated[Literal["ru", "en"], Field(description="language of the headers and labels")]


class CsvQuery(RequestFilters):
    lang: Lang = "ru"
    delimiter: Annotated[Literal[tuple(sorted(k for k in DELIMITERS if k.isalpha()))],
                         Field(description="semicolon suits Excel with Russian regional settings")] = "comma"


class EventsQuery(Paging):
    status: Annotated[Literal[EVENT_STATUSES] | None, Field(description="only this status")] = None
    integration_id: Annotated[QueryId | None, Field(description="one integration")] = None
    replay_id: Annotated[QueryId | None, Field(description="the events of one replay run")] = None
    lang: ReasonsLang = "ru"


class DashboardQuery(TimeZone):
    date_from: Annotated[DayText | None, Field(description="first local day (default: 29 days before date_till)")] = None
    date_till: Annotated[DayText | None, Field(description="last local day (default: today)")] = None
    integration_id: Annotated[QueryId | None, Field(description="one integration")] = None
    lang: Annotated[Literal["ru", "en"], Field(description="language of the labels")] = "ru"


# --- catalog: sites, sources, campaigns ----------------------------------------------------------

class Condition(Open):
    param: Literal[CONDITION_PARAMS]
    op: Literal[CONDITION_OPS]
    value: str
    exclude: bool = False


Conditions = Annotated[list[list[Condition]], Field(description="groups joined by OR; the conditions of a group by AND")]
Priority = Annotated[int | None, Field(ge=0, le=1_000_000)]


class SiteCreate(Open):
    name: Name
    domain: Annotated[str, Field(description="example.ru (a scheme, www. and a path are dropped)")]


class SourceCreate(Open):
    name: Name
    priority: Annotated[Priority, Field(description="lower goes first; null or absent = 100")] = None
    conditions: Conditions | None = None


class CampaignCreate(Open):
    name: Name
    site_id: Id
    priority: Annotated[Priority, Field(description="null or absent = 100")] = None
    conditions: Conditions | None = None


class ConditionOut(Answer):
    param: Literal[CONDITION_PARAMS]
    op: Literal[CONDITION_OPS]
    value: str
    exclude: bool


class Site(Answer):
    id: Id
    name: str
    domain: str
    site_key: str


class Source(Answer):
    id: Id
    name: str
    priority: Count
    conditions: Annotated[list[list[ConditionOut]], Field(description="groups joined by OR; the conditions of a group by AND")]


class Campaign(Source):
    site_id: Id


class SiteList(Answer):
    data: list[Site]
    total: Count


class SourceList(Answer):
    data: list[Source]
    total: Count


class CampaignList(Answer):
    data: list[Campaign]
    total: Count


# --- visitor sessions --------------------------------------------------------------------------

SESSION_TEXT_FIELDS = ("visitor_id", "entrance_page", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_term",
                       "utm_content", "gclid", "yclid", "fbclid")

SessionCreate = create_model(
    "SessionCreate", __base__=Closed, __doc__="A visit: the ad campaign and source are resolved by the rules.",
    site_id=(Id, ...),
    started_at=(DateTimeText | None, None),
    click_ids=(dict[str, str] | None, None),
    **{name: (str | None, None) for name in SESSION_TEXT_FIELDS},
)

VisitorSession = create_model(
    "VisitorSession", __base__=Answer,
    id=(Id, ...), site_id=(Id, ...), visitor_id=(str | None, ...), started_at=(DateTimeText | None, ...),
    **{name: (str | None, ...) for name in ("entrance_page", "referrer", "referrer_domain", "search_engine", "search_query",
                                           "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
                                           "gclid", "yclid", "fbclid")},
    channel=(str, ...), campaign_id=(Id | None, ...), source_id=(Id | None, ...),
)


# --- integrations --------------------------------------------------------------------------------

ChannelList = Annotated[
    list[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,30}$")]],
    Field(max_length=50, description="«Какие каналы передавать», as the channels NOT passed (talks of them are kept as "
                                     "`ignored`; a channel not listed is passed): email, site_chat, telegram, whatsapp, "
                                     "instagram, … New integrations start with [\"email\"]."),
]

ClickWindow = Annotated[int, Field(ge=0, le=1440, description=(
    "a messenger chat without a session goes to the one session that clicked that messenger's icon on the site's "
    "chat button this many minutes before it began; 0 = off (default 30)"))]


class MessengerMapping(Open):
    origin: Annotated[str, Field(min_length=1, max_length=100)]
    campaign_id: Id | None = None
    source_id: Id | None = None
    site_id: Id | None = None


class IntegrationSettings(Closed):
    """Only the fields given are changed."""
    name: Annotated[Name, Field(description="Название авторизации")] = None
    amocrm_url: Annotated[str, Field(description="AmoCRM URL, e.g. https://mycompany.amocrm.ru")] = None
    token_url: Annotated[str, Field(description="Token URL, e.g. https://mycompany.amocrm.ru/oauth2/access_token")] = None
    client_id: str = None
    client_secret: Annotated[str, Field(json_schema_extra={"writeOnly": True})] = None
    session_field_id: Id | None = None
    session_field_name: str | None = None
    session_field_entity: Entity = None
    traffic_type: TrafficType = None
    default_campaign_id: Id | None = None
    default_source_id: Id | None = None
    default_site_id: Id | None = None
    messenger_mappings: list[MessengerMapping] = None
    excluded_channels: ChannelList = None
    click_window_minutes: ClickWindow = None
    is_active: Annotated[bool, Field(description=(
        "activating checks that everything needed is set (422 `cannot_activate` lists what is missing)"))] = None


class IntegrationCreate(IntegrationSettings):
    """A new integration: only the name is needed; everything else can be set later."""
    name: Annotated[Name, Field(description="Название авторизации")]


class ConnectOptions(Closed):
    mode: Literal["popup", "post_message"] = "popup"


class Warning(Answer):  # noqa: A001 - the document's name for it
    code: Annotated[Literal[WARNING_CODES], Field(
        description="no_worker: events wait and no worker consumes the queue (integration_id is null)")]
    severity: Literal["error", "warning"]
    integration_id: Id | None
    integration_name: str | None
    params: dict[str, Any]
    template: Annotated[str, Field(description="English msgid with %(name)s placeholders")]
    message: Annotated[str, Field(description="English")]
    message_ru: Annotated[str, Field(description="Russian")]


class MessengerMappingOut(Answer):
    origin: Annotated[str, Field(min_length=1, max_length=100)]
    campaign_id: Id | None
    source_id: Id | None
    site_id: Id | None


class AmoAccount(Answer):
    id: Id | None
    subdomain: str | None
    name: str | None


class Integration(Answer):
    id: Id
    name: str
    amocrm_url: str
    token_url: str
    client_id: str
    client_secret_set: bool
    status: Literal["new", "connected", "needs_reauth"]
    account: AmoAccount | None
    token_expires_at: DateTimeText | None
    webhook_url: Annotated[str, Field(description=(
        "«Webhook url»: set it in amoCRM for «Беседа изменена» if it was not registered automatically"))]
    webhook_registered: bool
    session_field_id: Id | None
    session_field_name: str | None
    session_field_entity: Entity
    traffic_type: TrafficType
    default_campaign_id: Id | None
    default_source_id: Id | None
    default_site_id: Id | None
    messenger_mappings: list[MessengerMappingOut]
    excluded_channels: ChannelList
    click_window_minutes: ClickWindow
    is_active: bool
    last_error: str | None
    last_event_at: DateTimeText | None
    site_script: Annotated[str | None, Field(description="«Скрипт для вашего сайта», once the session field is chosen")]
    warnings: list[Warning]


class IntegrationList(Answer):
    data: list[Integration]
    total: Count


class AuthorizeUrl(Answer):
    authorize_url: str


class WebhookRotation(Answer):
    model_config = ConfigDict(extra="forbid")
    webhook_url: Annotated[str, Field(description="the new url to give amoCRM; the old one is dead")]
    connected: Annotated[bool, Field(description="whether amoCRM was asked to switch to the new url")]
    webhook_registered: Annotated[bool, Field(description="the new url is subscribed in amoCRM")]
    old_hooks_deleted: Count
    amocrm_error: Annotated[str | None, Field(description="amoCRM's refusal: register the webhook again")]


class CustomField(Answer):
    id: int
    name: str | None
    type: str | None
    code: str | None
    entity: Entity


class CustomFieldList(Answer):
    data: list[CustomField]
    total: Count


# --- requests, events, replays, backfills ------------------------------------------------------------

Request = create_model(
    "Request", __base__=Answer,
    id=(Id, ...), integration_id=(Id, ...), integration_name=(str | None, ...),
    talk_id=(int, ...), chat_id=(str | None, ...), origin=(str | None, ...),
    channel=(Annotated[str, Field(description="site_chat, telegram, whatsapp, instagram, facebook, vk, viber, avito, "
                                              "tiktok, email, sms, apple_messages, other, unknown…")], ...),
    contact_name=(str | None, ...),
    phone=(Annotated[str | None, Field(description="E.164 when it parses, e.g. +79151234567")], ...),
    phone_raw=(Annotated[str | None, Field(description="the phone exactly as amoCRM held it (`phone` is its E.164 reading)")], ...),
    email=(str | None, ...), created_at=(DateTimeText, ...), closed_at=(DateTimeText | None, ...),
    session_id=(Id | None, ...), visitor_id=(str | None, ...),
    site_id=(Id | None, ...), site_name=(str | None, ...), campaign_id=(Id | None, ...), campaign_name=(str | None, ...),
    source_id=(Id | None, ...), source_name=(str | None, ...),
    **{name: (str | None, ...) for name in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
                                           "referrer", "entrance_page")},
    attribution=(Literal[ATTRIBUTIONS], ...),
    attribution_reason=(Annotated[str, Field(description="why this attribution, in `lang`")], ...),
    attribution_reason_code=(Annotated[str, Field(description=(
        "the reason's code, e.g. attribution.session (`legacy`: words stored before codes existed)"))], ...),
    amo_lead_id=(int | None, ...), amo_contact_id=(int | None, ...),
    amo_lead_url=(Annotated[str | None, Field(description="{amoCRM}/leads/detail/{id}")], ...),
    amo_contact_url=(Annotated[str | None, Field(description="{amoCRM}/contacts/detail/{id}")], ...),
    is_repeat=(Annotated[bool, Field(description=(
        "the contact (amoCRM contact, else phone, else e-mail) made a request within the account's repeat window "
        "(30 days unless changed) before this one"))], ...),
    first_request_id=(Annotated[int | None, Field(description=(
        "a repeat request's first request of the series; null when new"))], ...),
)


class RequestList(Answer):
    data: list[Request]
    total: Count
    next_cursor: Annotated[str | None, Field(description="pass as `cursor` for the next page; null on the last")]


class Event(Answer):
    id: Id
    integration_id: Id
    talk_id: int | None
    action: str
    status: Literal[EVENT_STATUSES]
    status_reason: Annotated[str | None, Field(description="why this status, in `lang`")]
    status_reason_code: Annotated[str | None, Field(description="the reason's code, e.g. event.talk_open")]
    attempts: Count
    error: str | None
    received_at: DateTimeText
    processed_at: DateTimeText | None
    request_id: Id | None
    replay_run_id: Id | None


class EventList(Answer):
    data: list[Event]
    total: Count


class ReplayFilter(Closed):
    integration_id: Id | None = None
    date_from: Annotated[str | None, Field(description="received from (inclusive). " + MOMENT_TEXT)] = None
    date_till: Annotated[str | None, Field(description="received until (inclusive). " + MOMENT_TEXT)] = None
    statuses: Annotated[list[Literal[REPLAYABLE_STATUSES]] | None, Field(
        min_length=1, description="default (missing or null): failed and parked")] = None
    tz: Annotated[str | None, Field(description=TZ_TEXT)] = None


class ReplayQueued(Answer):
    replay_id: Annotated[Id | None, Field(description="null when nothing matched")]
    queued: Count
    skipped: Annotated[dict[str, Count], Field(
        description="not_closed, needs_reauth, integration_inactive: events left as they were")]
    progress_url: str | None


class ReplayFilterEcho(Answer):
    integration_id: Id | None
    statuses: list[str]
    date_from: DateTimeText | None
    date_till: DateTimeText | None


class ReplayProgress(Answer):
    id: Id
    created_at: DateTimeText
    requested_by: str | None
    filter: ReplayFilterEcho
    total: Count
    skipped: dict[str, Count]
    counts: Annotated[dict[str, Count], Field(description="the run's events by status now")]
    pending: Count
    done: Count
    failed: Count
    finished: bool
    progress: Share


class BackfillRequest(Closed):
    date_from: Annotated[str, Field(description="read from (inclusive), not in the future. " + MOMENT_TEXT)]
    date_till: Annotated[str | None, Field(description="read until (inclusive); later than now (or missing) means now; "
                                                       "at most 90 days after date_from. " + MOMENT_TEXT)] = None
    tz: Annotated[str | None, Field(description=TZ_TEXT)] = None


class Backfill(Answer):
    id: Id
    backfill_id: Id
    integration_id: Id
    status: Literal["queued", "running", "done", "failed"]
    date_from: DateTimeText
    date_till: DateTimeText
    reached: Annotated[DateTimeText | None, Field(description="read up to here (the period is read oldest first)")]
    pages: Count
    events: Annotated[Count, Field(description="talk_closed events read")]
    talks_found: Count
    already_recorded: Annotated[Count, Field(description="talks a request or a webhook already had")]
    recovered: Annotated[Count, Field(description="closed talks no webhook reported, queued to become requests")]
    not_closed: Count
    not_found: Count
    unreadable: Annotated[Count, Field(description="talk_closed events whose talk id could not be read")]
    error: str | None
    requested_by: str | None
    created_at: DateTimeText
    started_at: DateTimeText | None
    finished_at: DateTimeText | None
    finished: bool
    progress: Share
    progress_url: str


# --- dashboard ---------------------------------------------------------------------------------------

class Series(Answer):
    id: int | None = None
    key: Annotated[str, Field(description="the id, `none` (requests without one) or `other` (the smaller series summed)")]
    label: str
    total: Count
    per_day: list[Count]
    merged: Count = 0


AttributionCounts = create_model("AttributionCounts", __base__=Answer, **{k: (Count, ...) for k in ATTRIBUTIONS})
AttributionShares = create_model("AttributionShares", __base__=Answer, **{k: (Share, ...) for k in ATTRIBUTIONS})
Backlog = create_model("Backlog", __base__=Answer, **{k: (Count, ...) for k in (status.value for status in event_status.BACKLOG)})


class AttributionPrevious(Answer):
    total: Count
    counts: AttributionCounts
    shares: AttributionShares


class AttributionSummary(AttributionPrevious):
    labels: dict[str, str]
    per_day: dict[str, list[Count]]
    previous: AttributionPrevious


class Reconciliation(Answer):
    last_run_at: Annotated[DateTimeText | None, Field(description="last reconciliation with amoCRM's event log")]
    recovered_last_run: Count
    recovered_total: Annotated[Count, Field(description="closed chats found that no webhook reported")]
    unreadable_total: Annotated[Count, Field(description="talk_closed events whose talk id could not be read")]
    last_error: str | None


class IntegrationHealth(Answer):
    id: Id
    name: str
    status: str
    is_active: bool
    account_name: str | None
    token_expires_at: DateTimeText | None
    token_refreshed_at: DateTimeText | None
    refresh_token_age_days: Count | None
    refresh_token_expires_at: DateTimeText | None
    webhook_registered: bool
    webhook_registered_at: DateTimeText | None
    webhook_disabled: bool
    webhook_checked_at: DateTimeText | None
    backlog: Backlog
    oldest_pending_at: DateTimeText | None
    last_error: str | None
    last_error_at: DateTimeText | None
    last_event_at: DateTimeText | None
    last_request_at: DateTimeText | None
    reconciliation: Reconciliation


class DashboardRange(Answer):
    date_from: DayText
    date_till: DayText
    tz: str
    days: Count
    previous_from: DayText
    previous_till: DayText


class RepeatSummary(Answer):
    new: Count
    repeat: Count
    repeat_share: float
    window_days: Annotated[int, Field(description="the account's repeat window")]


class Dashboard(Answer):
    range: DashboardRange
    integration_id: Id | None
    days: list[DayText]
    total: Count
    by_channel: list[Series]
    by_campaign: list[Series]
    by_source: list[Series]
    attribution: AttributionSummary
    integrations: list[IntegrationHealth]
    warnings: list[Warning]
    repeat: RepeatSummary


# --- errors ------------------------------------------------------------------------------------------

class ErrorDetail(Answer):
    code: Annotated[str, Field(description="machine-readable, e.g. `unauthorized`, `bad_parameter`, `invalid`, `not_found`")]
    message: Annotated[str, Field(description="what is wrong and how to fix it")]
    field: Annotated[str | None, Field(description="the parameter or body field at fault")] = None
    missing: Annotated[list[str], Field(description="what to do before activating (cannot_activate)")] = []


class Error(Answer):
    error: ErrorDetail
