"""amoCRM webhook form encoding (pure functions, stdlib only).

amoCRM posts webhooks as ``application/x-www-form-urlencoded`` with PHP-style
bracket keys (https://www.amocrm.ru/developers/content/crm_platform/webhooks-format):

    account[subdomain]=sub&account[id]=123&account[_links][self]=https://sub.amocrm.ru
    &talk[update][0][talk_id]=191&talk[update][0][is_in_work]=0&...

* every value is a string, booleans are ``"1"`` / ``"0"``;
* several entities share one body under indices ``0..n``;
* entity keys are singular for ``talk``/``task``/``message`` but plural for
  ``leads``/``contacts``.

``None`` values are left out of the body, the way PHP's ``http_build_query``
drops nulls [inf].  Importable without Flask: our tests use it to craft bodies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = [
    "TALK_FIELDS",
    "EVENT_TO_KEY",
    "form_value",
    "flatten",
    "account_pairs",
    "encode_entity_events",
    "encode_talk_events",
    "encode_talk_body",
    "encode_body",
    "decode_form",
]

#: Keys of a talk item in ``talk[add|update][i]`` (KO example; no missed_at / account_id).
TALK_FIELDS: tuple[str, ...] = (
    "talk_id",
    "created_at",
    "updated_at",
    "rate",
    "contact_id",
    "chat_id",
    "entity_id",
    "entity_type",
    "is_in_work",
    "is_read",
    "origin",
)

#: Webhook event name (registry ``settings``) -> (entity key, action key) in the body.
EVENT_TO_KEY: dict[str, tuple[str, str]] = {
    "add_talk": ("talk", "add"),
    "update_talk": ("talk", "update"),
    "delete_talk": ("talk", "delete"),
    "add_lead": ("leads", "add"),
    "update_lead": ("leads", "update"),
    "delete_lead": ("leads", "delete"),
    "restore_lead": ("leads", "restore"),
    "status_lead": ("leads", "status"),
    "responsible_lead": ("leads", "responsible"),
    "note_lead": ("leads", "note"),
    "add_contact": ("contacts", "add"),
    "update_contact": ("contacts", "update"),
    "delete_contact": ("contacts", "delete"),
    "restore_contact": ("contacts", "restore"),
    "responsible_contact": ("contacts", "responsible"),
    "note_contact": ("contacts", "note"),
    "add_task": ("task", "add"),
    "update_task": ("task", "update"),
    "delete_task": ("task", "delete"),
    "responsible_task": ("task", "responsible"),
    "add_message": ("message", "add"),
}


def form_value(value: Any) -> str | None:
    """One value as amoCRM writes it into a form body (``None`` = omit the key)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def flatten(prefix: str, value: Any) -> list[tuple[str, str]]:
    """Flatten nested mappings / sequences into PHP bracket keys under *prefix*."""
    out: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            out.extend(flatten(f"{prefix}[{k}]", v))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            out.extend(flatten(f"{prefix}[{i}]", v))
    else:
        text = form_value(value)
        if text is not None:
            out.append((prefix, text))
    return out


def _account_self(account: Mapping[str, Any]) -> str | None:
    for key in ("self_url", "self", "url"):
        if account.get(key):
            return str(account[key])
    links = account.get("_links")
    if isinstance(links, Mapping):
        link = links.get("self")
        if isinstance(link, Mapping):
            link = link.get("href")
        if link:
            return str(link)
    return None


def account_pairs(account: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``account[subdomain]``, ``account[id]``, ``account[_links][self]``.

    *account* is a mapping with ``subdomain``, ``id`` and ``self_url`` (the
    account base URL, e.g. ``https://sub.amocrm.ru``; ``self``/``url`` or an
    API-style ``_links.self[.href]`` are accepted too).
    """
    pairs: list[tuple[str, str]] = []
    if account.get("subdomain") is not None:
        pairs.append(("account[subdomain]", str(account["subdomain"])))
    if account.get("id") is not None:
        pairs.append(("account[id]", str(account["id"])))
    self_url = _account_self(account)
    if self_url is not None:
        pairs.append(("account[_links][self]", self_url))
    return pairs


def encode_entity_events(
    entity: str,
    action: str,
    items: Iterable[Mapping[str, Any]],
    fields: Iterable[str] | None = None,
    start_index: int = 0,
) -> list[tuple[str, str]]:
    """``{entity}[{action}][{i}][{field}]`` pairs for *items* (no account keys)."""
    keys = tuple(fields) if fields is not None else None
    pairs: list[tuple[str, str]] = []
    for i, item in enumerate(items, start=start_index):
        prefix = f"{entity}[{action}][{i}]"
        names = keys if keys is not None else tuple(item.keys())
        for name in names:
            if name not in item:
                continue
            pairs.extend(flatten(f"{prefix}[{name}]", item[name]))
    return pairs


def encode_talk_events(
    action: str,
    talks: Iterable[Mapping[str, Any]],
    account: Mapping[str, Any],
) -> list[tuple[str, str]]:
    """Pairs of a talk webhook body: the account keys FIRST (as live accounts send them; the docs
    do not say), then ``talk[{action}][i][field]`` for each talk.

    *action* is ``"add"`` or ``"update"`` (``"add_talk"``/``"update_talk"`` are accepted too).
    *talks* are talk mappings in the REST shape (``GET /api/v4/talks/{id}``: booleans as
    bool, ids as int); only :data:`TALK_FIELDS` are written, in that order, ``None`` omitted.
    """
    if action in EVENT_TO_KEY:
        entity, action = EVENT_TO_KEY[action]
        if entity != "talk":
            raise ValueError(f"not a talk event: {entity}")
    return account_pairs(account) + encode_entity_events("talk", action, talks, TALK_FIELDS)


def encode_body(pairs: Iterable[tuple[str, str]]) -> str:
    """urlencode pairs the way PHP ``http_build_query`` does (``%5B``/``%5D``, ``+`` for spaces)."""
    return urlencode(list(pairs))


def encode_talk_body(action: str, talks: Iterable[Mapping[str, Any]], account: Mapping[str, Any]) -> str:
    """:func:`encode_talk_events` as an urlencoded string, ready to POST."""
    return encode_body(encode_talk_events(action, talks, account))


def _split_key(key: str) -> list[str]:
    if "[" not in key:
        return [key]
    head, rest = key.split("[", 1)
    parts = [head]
    for chunk in ("[" + rest).split("]"):
        if chunk.startswith("["):
            parts.append(chunk[1:])
    return parts


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def decode_form(body: str | bytes | Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Parse a PHP-style form body into nested dicts (digit-keyed levels become lists).

    ``decode_form("talk[update][0][talk_id]=5&account[id]=1")`` ->
    ``{"talk": {"update": [{"talk_id": "5"}]}, "account": {"id": "1"}}``.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    pairs = parse_qsl(body, keep_blank_values=True) if isinstance(body, str) else list(body)
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = _split_key(key)
        node = root
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                node[part] = nxt
            node = nxt
        node[parts[-1]] = value
    return _listify(root)
