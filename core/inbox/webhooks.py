"""amoCRM webhooks in: parse the form encoding, store every talk item in the inbox, say what to enqueue.

amoCRM posts `application/x-www-form-urlencoded` bodies keyed `talk[update][0][talk_id]=…`, several
items per body, plus `account[subdomain|id|_links][self]`; every value is a string and booleans are
"1"/"0" (https://www.amocrm.ru/developers/content/crm_platform/webhooks-format). The web adapter answers 2xx only after `store_webhook` has committed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.amocrm.messengers import excluded_channel_reason
from core.inbox import event_reasons
from core.inbox.event_status import EventStatus
from core.models import Integration, WebhookEvent, stored_message
from core.platform.crypto import sha256_hex
from core.platform.db import insert_many_ignoring_conflicts, utcnow
from core.platform.messages import Message

TALK_FIELDS = (
    "talk_id", "created_at", "updated_at", "rate", "contact_id", "chat_id", "entity_id",
    "entity_type", "is_in_work", "is_read", "origin", "missed_at", "account_id",
)
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_INTEGER = re.compile(r"-?[0-9]+\Z")  # ASCII digits only: "²" and "١٢٣" are digits to str.isdigit()
MAX_ID = 2**63 - 1  # BIGINT
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_FIELD_CHARS = 100  # ids, uuids and origin codes; the request columns hold 100
MAX_ACCOUNT_CHARS = 500
_PART = re.compile(r"\[([^\[\]]*)\]")
MAX_ITEMS_PER_BODY = 500
MAX_KEYS = 10_000


class MalformedWebhook(ValueError):
    """The body is not in amoCRM's webhook form encoding; the message says why."""


@dataclass
class TalkItem:
    action: str  # add | update
    fields: dict

    @property
    def talk_id(self) -> int:
        return int(self.fields["talk_id"])

    @property
    def is_closed(self) -> bool:
        return is_closed_item(self.fields)


def is_closed_item(fields: dict) -> bool:
    """A talk is finished when amoCRM says is_in_work is false ("0" in webhooks)."""
    return (fields or {}).get("is_in_work") in ("0", "false", "False")


@dataclass
class ParsedWebhook:
    account: dict = field(default_factory=dict)
    talks: list[TalkItem] = field(default_factory=list)
    other_entities: list[str] = field(default_factory=list)


def nest_form(pairs: list[tuple[str, str]]) -> dict:
    """`a[b][0][c]=v` pairs → nested dicts (list indices stay dict keys: amoCRM may skip indices)."""
    if len(pairs) > MAX_KEYS:
        raise MalformedWebhook(f"too many form fields ({len(pairs)}, at most {MAX_KEYS})")
    root: dict = {}
    for key, value in pairs:
        m = _KEY.match(key)
        if not m:
            raise MalformedWebhook(f"field name {key[:80]!r} is not in amoCRM's form encoding")
        path = [m.group(1)] + _PART.findall(m.group(2))
        if any(p == "" for p in path):
            raise MalformedWebhook(f"field name {key[:80]!r} has an empty [] part")
        node = root
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise MalformedWebhook(f"field {key[:80]!r} conflicts with a value sent under the same name")
            node = child
        if path[-1] in node:
            raise MalformedWebhook(f"field {key[:80]!r} is sent twice")
        node[path[-1]] = value
    return root


# What we read from a body; the strict checks (and their 400s) apply to these keys only.
PARSED_ENTITIES = ("talk", "account")


def _top_name(key: str) -> str:
    return key.split("[", 1)[0]


def parse_webhook(pairs: list[tuple[str, str]]) -> ParsedWebhook:
    """The account block and the talk items of a body, checked strictly; everything else is only
    named in `other_entities`. A hook may be ticked for more events than ours (`message[add]`,
    `leads[update]`, `contacts[update]` with the old custom_fields shape, `unsorted[add]`…, as live accounts send)
    and those bodies use shapes we never read (`[]` parts, repeated keys): they must get a 2xx,
    because amoCRM counts every 4xx towards disabling the hook."""
    if not pairs:
        raise MalformedWebhook("the body is empty: expected amoCRM's form-encoded talk[...] fields")
    if len(pairs) > MAX_KEYS:
        raise MalformedWebhook(f"too many form fields ({len(pairs)}, at most {MAX_KEYS})")
    ours = [(key, value) for key, value in pairs if _top_name(key) in PARSED_ENTITIES]
    others = {_top_name(key) for key, _ in pairs} - set(PARSED_ENTITIES)
    tree = nest_form(ours)
    parsed = ParsedWebhook()
    account = tree.pop("account", {})
    if not isinstance(account, dict):
        raise MalformedWebhook("account must be a group of fields (account[id], account[subdomain])")
    parsed.account = {k: v for k, v in account.items() if isinstance(v, str)}
    for name, value in parsed.account.items():
        _check_text(f"account[{name}]", value, MAX_ACCOUNT_CHARS)
    talk = tree.pop("talk", None)
    parsed.other_entities = sorted(name[:40] for name in others if name)
    if talk is None:
        return parsed
    if not isinstance(talk, dict):
        raise MalformedWebhook("talk must be grouped as talk[add|update][index][field]")
    for action, items in sorted(talk.items()):
        if action not in ("add", "update", "delete"):
            raise MalformedWebhook(f"unknown talk action {action!r}: expected add or update")
        if not isinstance(items, dict):
            raise MalformedWebhook(f"talk[{action}] must hold indexed items: talk[{action}][0][talk_id]")
        for index, fields in sorted(items.items(), key=lambda kv: (len(kv[0]), kv[0])):
            if not index.isdigit():
                raise MalformedWebhook(f"talk[{action}][{index[:20]}]: the index must be a number")
            if not isinstance(fields, dict):
                raise MalformedWebhook(f"talk[{action}][{index}] must hold fields such as [talk_id]")
            clean = {k: v for k, v in fields.items() if k in TALK_FIELDS and isinstance(v, str)}
            where = f"talk[{action}][{index}]"
            for name, value in clean.items():
                _check_text(f"{where}[{name}]", value, MAX_FIELD_CHARS)
            if not _number_within(clean.get("talk_id", ""), 1, MAX_ID):
                raise MalformedWebhook(f"{where}[talk_id] must be a positive whole number (at most {MAX_ID})")
            for num, low, high in (("contact_id", 0, MAX_ID), ("entity_id", 0, MAX_ID),
                                   ("created_at", -MAX_TIMESTAMP, MAX_TIMESTAMP), ("updated_at", -MAX_TIMESTAMP, MAX_TIMESTAMP)):
                if clean.get(num) and not _number_within(clean[num], low, high):
                    raise MalformedWebhook(f"{where}[{num}] must be a whole number from {low} to {high}")
            parsed.talks.append(TalkItem(action=action, fields=clean))
    if len(parsed.talks) > MAX_ITEMS_PER_BODY:
        raise MalformedWebhook(f"too many talk items in one body ({len(parsed.talks)}, at most {MAX_ITEMS_PER_BODY})")
    return parsed


def _number_within(value: str, low: int, high: int) -> bool:
    return bool(_INTEGER.match(value)) and low <= int(value) <= high


def _check_text(name: str, value: str, limit: int) -> None:
    """Values end up in PostgreSQL text and JSONB, which cannot hold NUL; amoCRM never sends one."""
    if "\x00" in value:
        raise MalformedWebhook(f"{name[:80]} contains a NUL character")
    if len(value) > limit:
        raise MalformedWebhook(f"{name[:80]} is longer than {limit} characters")


def dedupe_key(item: TalkItem) -> str:
    """The same item delivered twice has the same key; a later change of the talk has another."""
    canonical = json.dumps({"action": item.action, **item.fields}, sort_keys=True, separators=(",", ":"))
    return sha256_hex(canonical)


# Every webhook runs this: built once, and only the columns the inbox needs, as a plain row (no ORM
# object), which took a tenth off the endpoint's CPU (bench.webhook_ingest, docs/benchmarks.md).
_BY_TOKEN_HASH = sa.select(
    Integration.id, Integration.account_id, Integration.is_active, Integration.status, Integration.last_event_at,
    Integration.excluded_channels,
).where(Integration.webhook_token_hash == sa.bindparam("token_hash"))


def find_integration_by_webhook_token(session: Session, webhook_token: str) -> sa.Row | None:
    """The integration a webhook url belongs to: a row with id, account_id, is_active, status,
    last_event_at and excluded_channels (what `store_webhook` needs), or None."""
    if not webhook_token or len(webhook_token) > 200:
        return None
    return session.connection().execute(_BY_TOKEN_HASH, {"token_hash": sha256_hex(webhook_token)}).first()


@dataclass
class StoreResult:
    stored: int = 0
    duplicates: int = 0
    to_enqueue: list[int] = field(default_factory=list)
    statuses: dict = field(default_factory=dict)


def initial_status(integration, item: TalkItem) -> tuple[str, Message | None]:
    if not item.is_closed:
        return EventStatus.SKIPPED, event_reasons.TALK_OPEN()
    if not integration.is_active:
        return EventStatus.IGNORED, event_reasons.INTEGRATION_INACTIVE()
    excluded = excluded_channel_reason(integration.excluded_channels, item.fields.get("origin"))
    if excluded:
        return EventStatus.IGNORED, excluded
    if integration.status == "needs_reauth":
        return EventStatus.PARKED, event_reasons.NEEDS_REAUTH()
    return EventStatus.RECEIVED, None


def store_webhook(session: Session, integration, parsed: ParsedWebhook) -> StoreResult:
    """Insert each talk item once (dedupe on integration + item); the caller commits, then enqueues.
    `integration` is what `find_integration_by_webhook_token` returns (or an `Integration`)."""
    extra = {"_account": parsed.account} if parsed.account else {}
    return store_talk_items(session, integration, [(item, dedupe_key(item), extra) for item in parsed.talks])


# Where an inbox item came from when it is not a webhook: reconciliation stores the talks it found in
# amoCRM's event log with this marker, and the recorded request's reason says so.
SOURCE_KEY = "_source"
RECONCILIATION_SOURCE = "reconciliation"


def store_talk_items(session: Session, integration, items: list[tuple[TalkItem, str, dict]], *,
                     touch_last_event: bool = True) -> StoreResult:
    """The one insert path of the inbox, for webhooks and reconciliation alike: each (item, dedupe key,
    extra payload) becomes a row unless the key is already there. The caller commits, then enqueues
    `to_enqueue`. Reconciliation passes `touch_last_event=False`: «last event» is the last webhook,
    and a hook that went quiet must keep looking quiet."""
    result = StoreResult()
    now = utcnow()
    rows = []
    for item, key, extra in items:
        status, reason = initial_status(integration, item)
        reason_code, reason_params = stored_message(reason)
        payload = dict(item.fields)
        payload.update(extra)
        rows.append(dict(
            account_id=integration.account_id,
            integration_id=integration.id,
            dedupe_key=key,
            entity="talk",
            action=item.action,
            talk_id=item.talk_id,
            item=payload,
            status=status,
            status_reason_code=reason_code,
            status_reason_params=reason_params,
            attempts=0,
            received_at=now,
        ))
    # One multi-row INSERT for the whole body; a key already stored (or twice in the body) is skipped.
    inserted = insert_many_ignoring_conflicts(session, WebhookEvent.__table__, rows, ["integration_id", "dedupe_key"],
                                              returning=("id", "status"))
    result.stored = len(inserted)
    result.duplicates = len(rows) - len(inserted)
    for new_id, status in sorted(inserted):
        result.statuses[status] = result.statuses.get(status, 0) + 1
        if status == EventStatus.RECEIVED:
            result.to_enqueue.append(new_id)
    if touch_last_event and items and (integration.last_event_at is None or (now - integration.last_event_at).total_seconds() > 30):
        # Written at most every 30 s: a burst must not serialise on the integration's row.
        session.execute(sa.update(Integration).where(Integration.id == integration.id).values(last_event_at=now))
    return result
