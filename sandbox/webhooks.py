"""Webhooks of the account (§3): the registry (``/api/v4/webhooks``), the bodies sent to it, every
delivery attempt, amo's disable rule (more than 100 invalid replies in 2 h), retries on amo's timetable
and the delivery queue (:class:`sandbox.delivery.Deliverer`).  Network I/O never happens under the lock."""

from __future__ import annotations

import copy
import threading
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from .account import AccountStore
from .delivery import Deliverer
from .errors import ApiProblem, SandboxError
from .traffic import TrafficStore
from .webhook_format import EVENT_TO_KEY, encode_body, encode_talk_events

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

MAX_DELIVERIES_KEPT = 5000


class WebhookStore:
    """Registered hooks and deliveries; counts sent attempts in the traffic stats."""

    def __init__(self, lock: threading.RLock, account: AccountStore, traffic: TrafficStore) -> None:
        self.lock = lock
        self.account = account
        self.traffic = traffic
        self.deliverer = Deliverer(self)

    def reset_locked(self) -> None:
        """No hooks, no deliveries; queued jobs and scheduled retries are dropped."""
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []
        self._ids = {"webhook": 1100001, "delivery": 1}
        self.deliverer.cancel_pending()

    def _next_id(self, kind: str) -> int:
        value = self._ids[kind]
        self._ids[kind] = value + 1
        return value

    @property
    def settings(self) -> dict[str, Any]:
        """The knobs (the deliverer reads ``deliver_async``, ``webhook_timeout``, ``webhook_user_agent``)."""
        return self.account.settings

    # ------------------------------------------------------------------- webhooks registry --
    def webhook_json(self, h: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": h["id"], "destination": h["destination"], "created_at": h["created_at"],
            "updated_at": h["updated_at"], "account_id": self.account.settings["account_id"],
            "created_by": h["created_by"], "sort": h["sort"], "disabled": h["disabled"],
            "settings": list(h["settings"]),
        }

    def list_webhooks(self, destination: str | None = None, internal: bool = False) -> list[dict[str, Any]]:
        with self.lock:
            hooks = sorted(self.webhooks.values(), key=lambda h: (h["sort"], h["id"]))
            if destination is not None:
                hooks = [h for h in hooks if h["destination"] == destination]
            if internal:
                now = self.account.now_f()
                window = self.account.settings["webhook_disable_window"]
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
            now = self.account.now()
            unique = list(dict.fromkeys(settings))
            for h in self.webhooks.values():
                if h["destination"] == destination:
                    h["settings"] = unique  # replaced, not merged
                    if sort is not None:
                        h["sort"] = sort
                    h["updated_at"] = now
                    return self.webhook_json(h), False
            if len(self.webhooks) >= self.account.settings["max_webhooks"]:
                raise ApiProblem("Webhooks limit exceeded", 400, validation_errors=[{
                    "code": "WebhooksLimitExceeded", "path": "destination",
                    "detail": f"No more than {self.account.settings['max_webhooks']} webhooks per account."}])
            hid = self._next_id("webhook")
            h = {
                "id": hid, "destination": destination, "settings": unique,
                "sort": sort if sort is not None else len(self.webhooks) + 1,
                "disabled": False, "created_at": now, "updated_at": now,
                "created_by": self.account.settings["current_user_id"], "invalid": deque(), "last_valid": None,
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
            h["disabled_at"] = self.account.now() if disabled else None
            if not disabled:
                h["invalid"].clear()
            h["updated_at"] = self.account.now()
            return self.webhook_json(h)

    def set_all_webhooks_disabled(self, disabled: bool = True) -> list[dict[str, Any]]:
        """Control: every hook disabled (or enabled again), as amoCRM does after 100 bad answers."""
        with self.lock:
            ids = list(self.webhooks)
        return [self.set_webhook_disabled(hook_id, disabled) for hook_id in ids]

    # ------------------------------------------------------------------------- deliveries --
    def emit_talk_event(self, event: str, talks: list[dict[str, Any]], destination: str | None = None,
                        times: int = 1) -> list[dict[str, Any]]:
        """Deliver one body holding *talks* to every enabled hook subscribed to *event*
        (or to *destination* only), *times* times each.  Returns the delivery records."""
        if event not in EVENT_TO_KEY or EVENT_TO_KEY[event][0] != "talk":
            raise SandboxError(f"not a talk event: {event!r}")
        if not talks:
            return []
        account = self.account.account_ref()
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
            "created_at": self.account.now_f(), "sent_at": None,
        }
        self.deliveries.append(rec)
        if len(self.deliveries) > MAX_DELIVERIES_KEPT:
            del self.deliveries[: len(self.deliveries) - MAX_DELIVERIES_KEPT]
        return rec

    def record_attempt(self, rec: dict[str, Any], status_code: int | None, error: str | None,
                         duration: float) -> tuple[int, float] | None:
        """Record one attempt's outcome (called by the deliverer).  Returns (code, delay) of a retry or None."""
        with self.lock:
            valid = status_code is not None and 100 <= status_code <= 299 and error is None
            rec.update(status="done", status_code=status_code, error=error, valid=valid,
                       duration_ms=round(duration * 1000, 1), sent_at=self.account.now_f())
            self.traffic.count_locked("webhook_deliveries")
            h = self.webhooks.get(rec["hook_id"]) if rec["hook_id"] is not None else None
            if h is not None and h["destination"] == rec["destination"]:
                now = self.account.now_f()
                window = self.account.settings["webhook_disable_window"]
                inv = h["invalid"]
                while inv and inv[0] <= now - window:
                    inv.popleft()
                if valid:
                    h["last_valid"] = now
                else:
                    inv.append(now)
                    if len(inv) > self.account.settings["webhook_disable_threshold"] and not h["disabled"]:
                        h["disabled"] = True
                        h["disabled_at"] = int(now)
            if valid or not self.account.settings["webhook_retries"]:
                return None
            code = status_code or 0
            nxt = rec["attempt"] + 1
            delays = {2: 300, 3: 900, 4: 900, 5: 3600}
            if nxt in (2, 3) or (nxt in (4, 5) and (code == 499 or 500 <= code <= 599)):
                return code, delays[nxt] * self.account.settings["webhook_retry_scale"]
            return None

    def retry_job(self, rec: dict[str, Any]) -> dict[str, Any] | None:
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
