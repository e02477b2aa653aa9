"""What happens to each API call before it is served (the 403 block, the sliding rate window, §5),
and the call statistics (``GET /_sandbox/stats``)."""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from typing import Any

from .account import AccountStore


class TrafficStore:
    """The rate limit and block gate of ``/api/v4/*`` and ``/oauth2/*``, and the counters of every call."""

    def __init__(self, lock: threading.RLock, account: AccountStore) -> None:
        self.lock = lock
        self.account = account

    def reset_locked(self) -> None:
        self._rate_window: deque[float] = deque()
        self._count_429_for_block = 0
        self._reset_stats_locked()

    # ---------------------------------------------------------------------------- statistics --
    def _reset_stats_locked(self) -> None:
        self.stats: dict[str, Any] = {
            "api_calls": 0,
            "calls_by_endpoint": {},
            "responses_by_status": {},
            "peak_calls_per_second": 0,
            "responses_429": 0,
            "responses_403_blocked": 0,
            "token_refreshes": 0,
            "code_exchanges": 0,
            "webhook_deliveries": 0,
        }
        self._stats_window: deque[float] = deque()

    def reset_stats(self) -> None:
        with self.lock:
            self._reset_stats_locked()

    def get_stats(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.stats)

    def count_locked(self, counter: str) -> None:
        """One more of *counter* (``token_refreshes``, ``code_exchanges``, ``webhook_deliveries``)."""
        self.stats[counter] += 1

    def record_status(self, status: int) -> None:
        with self.lock:
            key = str(status)
            by = self.stats["responses_by_status"]
            by[key] = by.get(key, 0) + 1

    # ---------------------------------------------------------------------------------- gate --
    def api_gate(self, endpoint: str) -> str | None:
        """Count one API/token call.  Returns None (go on), ``"blocked"`` or ``"429"``."""
        t = time.monotonic()  # the arrival, before waiting for the lock other requests may hold
        with self.lock:
            s = self.account.settings
            st = self.stats
            st["api_calls"] += 1
            st["calls_by_endpoint"][endpoint] = st["calls_by_endpoint"].get(endpoint, 0) + 1
            win = self._stats_window
            win.append(t)
            while win and win[0] <= t - 1.0:
                win.popleft()
            st["peak_calls_per_second"] = max(st["peak_calls_per_second"], len(win))
            if s["blocked"]:
                st["responses_403_blocked"] += 1
                return "blocked"
            limit = s["rate_limit"]
            if not limit:
                return None
            rw = self._rate_window
            while rw and rw[0] <= t - s["rate_window"]:
                rw.popleft()
            if len(rw) + 1 > limit:
                if s["rate_limit_count_refused"]:
                    rw.append(t)
                st["responses_429"] += 1
                self._count_429_for_block += 1
                n = s["block_after_429s"]
                if n and self._count_429_for_block >= n:
                    s["blocked"] = True
                return "429"
            rw.append(t)
            return None

    def forget_429s_locked(self) -> None:
        """The block was lifted by a knob: the next block needs ``block_after_429s`` new refusals."""
        self._count_429_for_block = 0

    def unblock(self) -> None:
        with self.lock:
            self.account.settings["blocked"] = False
            self._count_429_for_block = 0
            self._rate_window.clear()
