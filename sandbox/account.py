"""The emulated account itself: its knobs, its clock, its identity and the random-fault dice.

Every other store reads the knobs through :class:`AccountStore` (``account.settings``), so a
``POST /_sandbox/settings`` is seen by all of them at once.  All stores share one lock.
"""

from __future__ import annotations

import copy
import random
import threading
import time
import uuid
from typing import Any

from . import settings as knobs


class AccountStore:
    """Knobs (``settings``), the sandbox clock, the account's ids and URLs, ``GET /api/v4/account``."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.settings: dict[str, Any] = {}

    def reset_locked(self, settings: dict[str, Any]) -> None:
        host = self.settings.get("account_host")
        self.settings = copy.deepcopy(settings)
        if self.settings.get("account_host") is None and host:
            # keep the host the server is bound to across resets
            self.settings["account_host"] = host
        self.rng = random.Random(self.settings["random_seed"])
        self.amojo_id = str(uuid.UUID(int=self.settings["account_id"] * 7919 + 1))
        self.created_at = self.now()

    # ------------------------------------------------------------------------------- clock --
    def now(self) -> int:
        return int(time.time() + self.settings.get("clock_offset", 0.0))

    def now_f(self) -> float:
        return time.time() + self.settings.get("clock_offset", 0.0)

    def advance_clock(self, seconds: float) -> float:
        with self.lock:
            self.settings["clock_offset"] = float(self.settings["clock_offset"]) + float(seconds)
            return self.settings["clock_offset"]

    # ------------------------------------------------------------------------------- knobs --
    def get_settings(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.settings)

    def merge_settings_locked(self, updates: dict[str, Any]) -> dict[str, Any]:
        """Validate *updates* against the current knobs and make them current (SettingsError: nothing changes)."""
        new = knobs.merge(self.settings, updates)
        if "random_seed" in updates:
            self.rng = random.Random(new["random_seed"])
        self.settings = new
        return new

    def roll_error(self) -> bool:
        """The ``error_rate`` fault: True when this call should fail."""
        with self.lock:
            rate = self.settings["error_rate"]
            return rate > 0 and self.rng.random() < rate

    # ---------------------------------------------------------------------- account / host --
    def ensure_host(self, host: str) -> None:
        with self.lock:
            if not self.settings.get("account_host"):
                self.settings["account_host"] = host

    @property
    def account_host(self) -> str:
        return self.settings.get("account_host") or "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"{self.settings['account_scheme']}://{self.account_host}"

    def link(self, path: str) -> dict[str, Any]:
        return {"self": {"href": f"{self.base_url}{path}"}}

    def account_ref(self) -> dict[str, Any]:
        """The ``account`` block of webhooks."""
        with self.lock:
            return {"subdomain": self.settings["subdomain"], "id": self.settings["account_id"], "self_url": self.base_url}

    def account_json(self, with_: set[str] | None = None) -> dict[str, Any]:
        with_ = with_ or set()
        with self.lock:
            s = self.settings
            uid = s["current_user_id"]
            data: dict[str, Any] = {
                "id": s["account_id"],
                "name": s["account_name"],
                "subdomain": s["subdomain"],
                "created_at": self.created_at,
                "created_by": uid,
                "updated_at": self.created_at,
                "updated_by": uid,
                "current_user_id": uid,
                "country": s["country"],
                "currency": s["currency"],
                "currency_symbol": "₽" if s["currency"] == "RUB" else s["currency"],
                "customers_mode": "disabled",
                "is_unsorted_on": True,
                "mobile_feature_version": 0,
                "is_loss_reason_enabled": True,
                "is_helpbot_enabled": False,
                "is_technical_account": False,
                "contact_name_display_order": 1,
            }
            if "amojo_id" in with_:
                data["amojo_id"] = self.amojo_id
            if "uuid" in with_:
                data["uuid"] = str(uuid.UUID(int=s["account_id"]))
            if "version" in with_:
                data["version"] = 11
            if "amojo_rights" in with_:
                data["amojo_rights"] = {"can_direct": True, "can_create_groups": True}
            if "datetime_settings" in with_:
                data["datetime_settings"] = {
                    "date_pattern": "d.m.Y H:i", "short_date_pattern": "d.m.Y", "short_time_pattern": "H:i",
                    "date_format": "d.m.Y", "time_format": "H:i:s", "timezone": "Europe/Moscow",
                    "timezone_offset": "+03:00",
                }
            if "drive_url" in with_:
                data["drive_url"] = f"{self.base_url}/drive"
            data["_links"] = {"self": {"href": f"{self.base_url}/api/v4/account"}}
            embedded: dict[str, Any] = {}
            if "users_groups" in with_:
                embedded["users_groups"] = [{"id": 0, "name": "Отдел продаж", "uuid": None}]
            if "task_types" in with_:
                embedded["task_types"] = [
                    {"id": 1, "name": "Связаться", "color": None, "icon_id": None, "code": "FOLLOW_UP"},
                    {"id": 2, "name": "Встреча", "color": None, "icon_id": None, "code": "MEETING"},
                ]
            if embedded:
                data["_embedded"] = embedded
            return data
