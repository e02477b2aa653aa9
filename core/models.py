"""The data model. Every row belongs to an account (one client's analytics account, "ЛК")."""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.amocrm.messengers import DEFAULT_EXCLUDED_CHANNELS
from core.inbox import attribution_reasons, event_reasons  # noqa: F401 - registers the reason codes
from core.inbox.event_status import EventStatus, check_constraint_sql
from core.platform.db import Base, BigId, JSONType, UTCDateTime, utcnow
from core.platform.messages import Message

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CLICK_ID_FIELDS = ("gclid", "yclid", "fbclid")
# Column sizes of VisitorSession (the tracking code and the Data API cut values to them); Text columns get a sane cap too (the tracking endpoint is public).
MAX_URL_LENGTH = 4096
MAX_SEARCH_QUERY_LENGTH = 1000
MAX_VISITOR_ID_LENGTH = 64
MAX_UTM_LENGTH = 500
MAX_CLICK_ID_LENGTH = 500
MAX_DOMAIN_LENGTH = 253
MAX_CLICK_ID_KEYS = 20




def request_search_text(contact_name: str | None, email: str | None, phone: str | None) -> str | None:
    """What the Raw data search looks in: the name and email case-folded, the phone as digits only
    (so «8 915 123», «+7 (915) 123» and «915123» all find +79151234567; see core.reporting.report)."""
    parts = [(contact_name or "").casefold().strip(), (email or "").casefold().strip(), "".join(ch for ch in (phone or "") if ch.isdigit())]
    text = "\n".join(parts)
    return text if text.strip() else None


def _request_search_text_default(context) -> str | None:
    # A column default, so every INSERT made through SQLAlchemy (ORM or Core, one row or many) fills it.
    params = context.get_current_parameters()
    return request_search_text(params.get("contact_name"), params.get("email"), params.get("phone"))


def stored_message(message: Message | None) -> tuple[str | None, dict | None]:
    """(code, params) columns for a message; for bulk inserts and updates that bypass the properties."""
    if message is None:
        return None, None
    data = message.to_json()
    return data["code"], data["params"]


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # «Период повторности»: a request whose contact made one within this many days is a repeat one
    # (core.inbox.repeat_requests).
    repeat_window_days: Mapped[int] = mapped_column(default=30, server_default="30")
    # Every time on every screen is shown in this IANA zone (core.access.accounts.set_time_zone).
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="Europe/Moscow", server_default="Europe/Moscow")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(300))
    is_active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str | None] = mapped_column(sa.String(8))
    # The Raw data columns this user hid and their order (core/reporting/report_columns.py); None = all, usual order.
    report_columns: Mapped[dict | None] = mapped_column(JSONType)
    failed_logins: Mapped[int] = mapped_column(default=0)
    last_failed_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Carried in the session cookie and checked on every request; a new one (sign-out, password
    # change) makes every copy of every older cookie of this user worthless (web/auth.py).
    session_nonce: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    account: Mapped[Account] = relationship()


class ApiToken(Base):
    """A Data API bearer token. Only its SHA-256 is stored; the prefix helps people tell tokens apart."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    domain: Mapped[str] = mapped_column(sa.String(253))
    site_key: Mapped[str] = mapped_column(sa.String(40), unique=True)
    # The last page view the tracking endpoint refused, and why (core.tracking.refusals).
    last_refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_refused_reason: Mapped[str | None] = mapped_column(sa.String(30))  # wrong_domain | bot
    last_refused_detail: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Source(Base):
    """A named traffic source (Yandex Direct, Google organic, Telegram…) with rules and a priority."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    priority: Mapped[int] = mapped_column(default=100)
    conditions: Mapped[list] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Campaign(Base):
    """An ad campaign ("рекламная кампания") of a site, defined by condition groups."""

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    priority: Mapped[int] = mapped_column(default=100)
    conditions: Mapped[list] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    site: Mapped[Site] = relationship()


class VisitorSession(Base):
    """A visit to a client's site as our tracking code sees it; its id goes into amoCRM's custom field."""

    __tablename__ = "visitor_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    visitor_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    entrance_page: Mapped[str | None] = mapped_column(sa.Text)
    referrer: Mapped[str | None] = mapped_column(sa.Text)
    referrer_domain: Mapped[str | None] = mapped_column(sa.String(253))
    search_engine: Mapped[str | None] = mapped_column(sa.String(50))
    search_query: Mapped[str | None] = mapped_column(sa.Text)
    utm_source: Mapped[str | None] = mapped_column(sa.String(500))
    utm_medium: Mapped[str | None] = mapped_column(sa.String(500))
    utm_campaign: Mapped[str | None] = mapped_column(sa.String(500))
    utm_term: Mapped[str | None] = mapped_column(sa.String(500))
    utm_content: Mapped[str | None] = mapped_column(sa.String(500))
    gclid: Mapped[str | None] = mapped_column(sa.String(500))
    yclid: Mapped[str | None] = mapped_column(sa.String(500))
    fbclid: Mapped[str | None] = mapped_column(sa.String(500))
    click_ids: Mapped[dict | None] = mapped_column(JSONType)
    channel: Mapped[str] = mapped_column(sa.String(20), default="direct")
    campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="SET NULL"))
    source_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sources.id", ondelete="SET NULL"))
    device: Mapped[str | None] = mapped_column(sa.String(20))
    browser: Mapped[str | None] = mapped_column(sa.String(50))
    ip_hash: Mapped[str | None] = mapped_column(sa.String(64))
    # Tracking code: the entrance page's title and the page views the session saw.
    entrance_title: Mapped[str | None] = mapped_column(sa.String(300))
    page_views: Mapped[int] = mapped_column(default=1, server_default="1")
    __table_args__ = (
        # The tracking endpoint's lookup: this visitor's latest session on this site.
        sa.Index("ix_visitor_sessions_site_visitor_activity", "site_id", "visitor_id", "last_activity_at"),
    )


class Integration(Base):
    """One amoCRM (Kommo) connection of an account: credentials, tokens, webhook and attribution settings."""

    __tablename__ = "integrations"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    amocrm_url: Mapped[str] = mapped_column(sa.String(500))
    token_url: Mapped[str] = mapped_column(sa.String(500))
    client_id: Mapped[str] = mapped_column(sa.String(200), default="")
    client_secret_enc: Mapped[str | None] = mapped_column(sa.Text)
    # The connected amoCRM account.
    amo_account_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    amo_subdomain: Mapped[str | None] = mapped_column(sa.String(200))
    amo_account_name: Mapped[str | None] = mapped_column(sa.String(300))
    api_base_url: Mapped[str | None] = mapped_column(sa.String(500))
    # OAuth tokens, encrypted; `token_version` is bumped on every write (compare-and-swap).
    access_token_enc: Mapped[str | None] = mapped_column(sa.Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(sa.Text)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_version: Mapped[int] = mapped_column(default=0)
    # The secret in our webhook url: looked up by hash, kept encrypted so the admin can see the url again.
    webhook_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    webhook_token_enc: Mapped[str] = mapped_column(sa.Text)
    webhook_registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_disabled: Mapped[bool] = mapped_column(default=False)
    # When the periodic check last read amoCRM's webhook list (core.integrations.maintenance.check_webhooks).
    webhook_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_field_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    session_field_name: Mapped[str | None] = mapped_column(sa.String(300))
    session_field_entity: Mapped[str] = mapped_column(sa.String(10), default="leads")
    traffic_type: Mapped[str] = mapped_column(sa.String(20), default="campaign")
    default_campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="SET NULL"))
    default_source_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sources.id", ondelete="SET NULL"))
    default_site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sites.id", ondelete="SET NULL"))
    is_active: Mapped[bool] = mapped_column(default=False)
    # «Какие каналы передавать», kept as the channels NOT passed so that a new channel is passed.
    excluded_channels: Mapped[list] = mapped_column(
        JSONType, default=lambda: list(DEFAULT_EXCLUDED_CHANNELS), server_default=sa.text("'[\"email\"]'"))
    status: Mapped[str] = mapped_column(sa.String(20), default="new")  # new | connected | needs_reauth
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Reconciliation with amoCRM's event log (core.inbox.reconciliation): talks closed that no webhook told us
    # about. The cursor moves only past what was committed; the counts are shown in the health.
    reconcile_cursor: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reconciled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reconcile_recovered_last: Mapped[int] = mapped_column(default=0, server_default="0")
    reconcile_recovered_total: Mapped[int] = mapped_column(default=0, server_default="0")
    reconcile_unreadable_total: Mapped[int] = mapped_column(default=0, server_default="0")
    reconcile_error: Mapped[str | None] = mapped_column(sa.Text)
    reconcile_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Messenger chats without a session are attributed to the one session that clicked that
    # messenger's button on the site this many minutes before the chat began; 0 = off (core.inbox.click_attribution).
    click_window_minutes: Mapped[int] = mapped_column(default=30, server_default="30")
    # Deleted by the admin (core.integrations.removal): the row stays so that its requests stay.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    mappings: Mapped[list["MessengerMapping"]] = relationship(
        back_populates="integration", cascade="all, delete-orphan", order_by="MessengerMapping.origin"
    )

    __table_args__ = (
        sa.CheckConstraint("traffic_type in ('campaign', 'source_site')", name="traffic_type"),
        sa.CheckConstraint("session_field_entity in ('leads', 'contacts')", name="session_field_entity"),
        sa.CheckConstraint("status in ('new', 'connected', 'needs_reauth')", name="status"),
    )


class MessengerMapping(Base):
    """Chats from a messenger (a talk `origin`) go to this campaign, or this source + site."""

    __tablename__ = "messenger_mappings"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    origin: Mapped[str] = mapped_column(sa.String(100))
    campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sources.id", ondelete="CASCADE"))
    site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    integration: Mapped[Integration] = relationship(back_populates="mappings")
    __table_args__ = (sa.UniqueConstraint("integration_id", "origin"),)


class OAuthState(Base):
    """A single-use nonce for the OAuth redirect, bound to one integration, the admin who pressed
    «Подключить» and that admin's browser session (core/integrations/connect.py).

    When amoCRM's redirect arrives anywhere else (another browser, a connect started through the
    API) the code waits here, encrypted, for a user of the integration's account to confirm it.
    """

    __tablename__ = "oauth_states"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"), index=True)
    state_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    return_to: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    browser_hash: Mapped[str | None] = mapped_column(sa.String(64))
    pending_code_enc: Mapped[str | None] = mapped_column(sa.Text)
    pending_referer: Mapped[str | None] = mapped_column(sa.String(300))
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirm_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReplayRun(Base):
    """One «replay by filter» (admin or API): which events it sent round again, for its progress."""

    __tablename__ = "replay_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    integration_id: Mapped[int | None] = mapped_column(sa.ForeignKey("integrations.id", ondelete="SET NULL"))
    statuses: Mapped[list] = mapped_column(JSONType, default=list)
    date_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    date_till: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[dict] = mapped_column(JSONType, default=dict)
    requested_by: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReconcileRun(Base):
    """A backfill: amoCRM's event log read for closed talks over a period an admin or the API chose.
    Its counters are its progress (core.inbox.reconciliation). The periodic reconciliation keeps its
    summary on the integration instead (one row per ten minutes would be noise)."""

    __tablename__ = "reconcile_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")  # queued | running | done | failed
    date_from: Mapped[datetime] = mapped_column(UTCDateTime)
    date_till: Mapped[datetime] = mapped_column(UTCDateTime)
    # How far the run has read (its windows are read oldest first), for the progress.
    reached: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pages: Mapped[int] = mapped_column(default=0)
    events: Mapped[int] = mapped_column(default=0)
    talks_found: Mapped[int] = mapped_column(default=0)
    already_recorded: Mapped[int] = mapped_column(default=0)
    recovered: Mapped[int] = mapped_column(default=0)
    not_closed: Mapped[int] = mapped_column(default=0)
    not_found: Mapped[int] = mapped_column(default=0)
    unreadable: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    requested_by: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        sa.CheckConstraint("status in ('queued', 'running', 'done', 'failed')", name="status"),
    )


class RepeatRecomputeRun(Base):
    """Flags of repeat requests recomputed after the account's repeat window changed
    (core.inbox.repeat_requests). `contacts_done` of `contacts_total` is its progress; a newer run of the
    same account supersedes it."""

    __tablename__ = "repeat_recompute_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    window_days: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")  # queued | running | done | superseded | failed
    contacts_total: Mapped[int] = mapped_column(default=0)
    contacts_done: Mapped[int] = mapped_column(default=0)
    changed: Mapped[int] = mapped_column(default=0)
    # The last contact key finished, so a retried run goes on from there.
    cursor_key: Mapped[str | None] = mapped_column(sa.String(300))
    error: Mapped[str | None] = mapped_column(sa.Text)
    requested_by: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        sa.CheckConstraint("status in ('queued', 'running', 'done', 'superseded', 'failed')", name="status"),
    )


class LiveCheck(Base):
    """«Проверить на тестовом обращении»: an admin waits for the next chat of an integration; what
    arrived since `started_at` is read back as stages (core.integrations.live_check)."""

    __tablename__ = "live_checks"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_by: Mapped[str | None] = mapped_column(sa.String(200))
    # The integration's newest inbox row when the check started: the chat it waits for comes after it.
    after_event_id: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class WebhookEvent(Base):
    """The inbox: one row per talk item amoCRM posted, stored before we answer 2xx.

    status: received (waiting for a worker) → processing (claimed) → done; or skipped (not a closed
    talk), ignored (integration inactive), parked (integration needs re-authorisation), failed
    (retries ran out; replay from the admin or the API). The values: `core.inbox.event_status.EventStatus`,
    held to them by a CHECK constraint.
    """

    __tablename__ = "webhook_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(sa.String(64))
    entity: Mapped[str] = mapped_column(sa.String(20), default="talk")
    action: Mapped[str] = mapped_column(sa.String(20))
    talk_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    item: Mapped[dict] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(sa.String(20), default=EventStatus.RECEIVED.value)
    # Why the event has its status, as a message code + params (core/inbox/event_reasons.py), said in the
    # reader's language; `status_message` reads and writes both.
    status_reason_code: Mapped[str | None] = mapped_column(sa.String(80))
    status_reason_params: Mapped[dict | None] = mapped_column(JSONType)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(sa.String(32))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("requests.id", ondelete="SET NULL"))
    replay_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("replay_runs.id", ondelete="SET NULL"), index=True)

    @property
    def status_message(self) -> Message | None:
        return Message.from_json(self.status_reason_code, self.status_reason_params)

    @status_message.setter
    def status_message(self, message: Message | None) -> None:
        self.status_reason_code, self.status_reason_params = stored_message(message)

    __table_args__ = (
        sa.UniqueConstraint("integration_id", "dedupe_key"),
        sa.Index("ix_webhook_events_integration_status", "integration_id", "status"),
        sa.Index("ix_webhook_events_status_received", "status", "received_at"),
        sa.CheckConstraint(check_constraint_sql(), name="status"),
    )


class MessengerClick(Base):
    """A visitor clicked a messenger's icon on the site's amoCRM chat button (`messenger_click` from
    the script for your site). The chat then happens in the messenger app, usually without our session
    in its lead; core.inbox.click_attribution ties it back to this session. A click attributes at most one
    talk: the first talk to match it claims it (`claimed_integration_id`, `claimed_talk_id`)."""

    __tablename__ = "messenger_clicks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(sa.ForeignKey("sites.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("visitor_sessions.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(sa.String(50))  # as the button named it: telegram, whatsapp…
    channel: Mapped[str] = mapped_column(sa.String(30))  # our channel (core.amocrm.messengers.channel_for_button)
    clicked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_integration_id: Mapped[int | None] = mapped_column(sa.ForeignKey("integrations.id", ondelete="SET NULL"))
    claimed_talk_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (
        # The candidates of a talk: this account's clicks of one channel in the window before it.
        sa.Index("ix_messenger_clicks_account_channel_clicked", "account_id", "channel", "clicked_at"),
        sa.Index("ix_messenger_clicks_claim", "claimed_integration_id", "claimed_talk_id"),
    )


class ChatRequest(Base):
    """A request ("обращение"): one finished amoCRM chat with its contact and attribution."""

    __tablename__ = "requests"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    talk_id: Mapped[int] = mapped_column(sa.BigInteger)
    chat_id: Mapped[str | None] = mapped_column(sa.String(100))
    origin: Mapped[str | None] = mapped_column(sa.String(100))
    channel: Mapped[str] = mapped_column(sa.String(30))
    contact_name: Mapped[str | None] = mapped_column(sa.String(300))
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    # The phone as amoCRM held it: `phone` is a guess at E.164 (core.amocrm.contact_data.normalise_phone).
    phone_raw: Mapped[str | None] = mapped_column(sa.String(100))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("visitor_sessions.id", ondelete="SET NULL")
    )
    visitor_id: Mapped[str | None] = mapped_column(sa.String(64))
    site_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sites.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(sa.ForeignKey("campaigns.id", ondelete="SET NULL"))
    source_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sources.id", ondelete="SET NULL"))
    utm_source: Mapped[str | None] = mapped_column(sa.String(500))
    utm_medium: Mapped[str | None] = mapped_column(sa.String(500))
    utm_campaign: Mapped[str | None] = mapped_column(sa.String(500))
    utm_term: Mapped[str | None] = mapped_column(sa.String(500))
    utm_content: Mapped[str | None] = mapped_column(sa.String(500))
    referrer: Mapped[str | None] = mapped_column(sa.Text)
    entrance_page: Mapped[str | None] = mapped_column(sa.Text)
    attribution: Mapped[str] = mapped_column(sa.String(20))  # session | messenger | default
    # Why this attribution, as a message code + params (core/inbox/attribution_reasons.py).
    attribution_reason_code: Mapped[str] = mapped_column(sa.String(80))
    attribution_reason_params: Mapped[dict | None] = mapped_column(JSONType)
    amo_lead_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    amo_contact_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Case-folded name, email and phone digits for the Raw data search (filled by the default).
    search_text: Mapped[str | None] = mapped_column(sa.Text, default=_request_search_text_default)
    # Repeat requests (core.inbox.repeat_requests): who the contact is (amoCRM contact, else phone, else
    # e-mail), whether they made a request within the account's repeat window before this one, and
    # the first request of that series.
    contact_key: Mapped[str | None] = mapped_column(sa.String(300))
    is_repeat: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    first_request_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("requests.id", ondelete="SET NULL"))

    @property
    def attribution_message(self) -> Message | None:
        return Message.from_json(self.attribution_reason_code, self.attribution_reason_params)

    @attribution_message.setter
    def attribution_message(self, message: Message | None) -> None:
        self.attribution_reason_code, self.attribution_reason_params = stored_message(message)

    __table_args__ = (
        sa.UniqueConstraint("integration_id", "talk_id"),
        sa.Index("ix_requests_account_created", "account_id", "created_at"),
        # The Raw data report's filters, each with the date sort behind it (core.reporting.report, core.reporting.dashboard).
        sa.Index("ix_requests_account_channel_created", "account_id", "channel", "created_at"),
        sa.Index("ix_requests_account_campaign_created", "account_id", "campaign_id", "created_at"),
        sa.Index("ix_requests_account_source_created", "account_id", "source_id", "created_at"),
        sa.Index("ix_requests_account_site_created", "account_id", "site_id", "created_at"),
        sa.Index("ix_requests_account_attribution_created", "account_id", "attribution", "created_at"),
        sa.Index("ix_requests_account_integration_created", "account_id", "integration_id", "created_at"),
        sa.Index("ix_requests_account_contact_created", "account_id", "contact_key", "created_at"),
        sa.Index("ix_requests_account_repeat_created", "account_id", "is_repeat", "created_at"),
        # Deleting requests looks up the repeat ones pointing at them (the self-reference's SET NULL).
        sa.Index("ix_requests_first_request_id", "first_request_id"),
        # Substring search: a pg_trgm GIN index on PostgreSQL (migration 0004 falls back to a plain
        # index where the extension cannot be created); a plain index on SQLite.
        sa.Index("ix_requests_search_text", "search_text", postgresql_using="gin",
                 postgresql_ops={"search_text": "gin_trgm_ops"}),
        sa.CheckConstraint("attribution in ('session', 'messenger', 'default')", name="attribution"),
    )


class RequestDailyCount(Base):
    """The dashboard's daily roll-up: how many requests an integration recorded on a local day
    (core.reporting.rollup.ROLLUP_ZONE) per channel, campaign, source, attribution and new / repeat.

    Kept exact by database triggers on `requests` (core.reporting.rollup), so every insert, delete and
    update — ours, a cascade, a bulk load — changes it in the same transaction. `campaign_id` and
    `source_id` are 0 for requests without one (so the key can be unique); no foreign keys on them:
    deleting a campaign sets the requests' campaign to NULL, and the trigger moves the counts to 0."""

    __tablename__ = "request_daily_counts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    integration_id: Mapped[int] = mapped_column(sa.ForeignKey("integrations.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(sa.Date)
    channel: Mapped[str] = mapped_column(sa.String(30))
    campaign_id: Mapped[int] = mapped_column(sa.Integer)
    source_id: Mapped[int] = mapped_column(sa.Integer)
    attribution: Mapped[str] = mapped_column(sa.String(20))
    is_repeat: Mapped[bool] = mapped_column(default=False, server_default=sa.false())  # new / repeat (migration 0015)
    n: Mapped[int] = mapped_column(sa.Integer)
    __table_args__ = (
        sa.UniqueConstraint("account_id", "day", "integration_id", "channel", "campaign_id", "source_id", "attribution",
                            "is_repeat", name="uq_request_daily_counts_key"),
    )
