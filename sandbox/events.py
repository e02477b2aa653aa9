"""The account's event log (§8, §10): ``talk_created`` / ``talk_closed`` of every talk, and events
of any shape put in through the control API; ``GET /api/v4/events`` reads it."""

from __future__ import annotations

import copy
import secrets
import threading
from typing import Any

from .account import AccountStore
from .errors import SandboxError


class EventLog:
    """The list of events, oldest first as appended; :meth:`query_events` filters and orders it."""

    def __init__(self, lock: threading.RLock, account: AccountStore) -> None:
        self.lock = lock
        self.account = account

    def reset_locked(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _event_id(self, created_at: int) -> str:
        """A ULID (26 Crockford base32 characters: 48-bit milliseconds + 80 random bits), as live ids look."""
        alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
        number = (int(created_at * 1000) << 80) | int.from_bytes(secrets.token_bytes(10), "big")
        return "".join(alphabet[(number >> (5 * i)) & 31] for i in reversed(range(26)))

    def log_talk_locked(self, type_: str, talk: dict[str, Any], created_at: int) -> None:
        """Every talk created or closed goes into the event log. Where a real `talk_closed` carries the
        talk id is not documented: by default in value_after[0].talk.id (by analogy with the
        `incoming_chat_message` event's value_after[0].message; sandbox/README.md); the knob
        `talk_event_shape` puts it elsewhere. Outside the "talk.id" and "entity" shapes the event's
        entity is the talk's lead (or contact), so only the chosen place carries the talk id."""
        shape = self.account.settings.get("talk_event_shape", "talk.id")
        talk_id = talk["talk_id"]
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
            "account_id": self.account.settings["account_id"],
        })

    def add_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Control: put an event of any shape into the log (id, created_at and account_id are filled
        when missing), e.g. a `talk_closed` that carries the talk id elsewhere, or none."""
        if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not event["type"]:
            raise SandboxError("an event is an object with a type")
        with self.lock:
            created_at = event.get("created_at")
            if created_at is None:
                created_at = self.account.now()
            elif isinstance(created_at, bool) or not isinstance(created_at, int):
                raise SandboxError("created_at must be a unix time (integer)")
            record = dict(event, created_at=created_at)
            record.setdefault("id", self._event_id(created_at))
            record.setdefault("account_id", self.account.settings["account_id"])
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
