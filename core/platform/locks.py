"""Named mutual-exclusion locks: Redis-backed across processes, or in-process for embedded mode.

`lock(name)` blocks (up to `blocking_timeout_s`) and raises `LockUnavailable` if it cannot get the
lock; `timeout_s` is how long the Redis lock lives if its holder dies. `try_lock(name)` never blocks
and yields whether it got the lock (e.g. one worker per integration batch).
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import ContextManager, Iterator, Protocol

log = logging.getLogger(__name__)

KEY_PREFIX = "chatsource:lock:"


class LockUnavailable(Exception):
    """The lock was not acquired within the blocking timeout."""

    def __init__(self, name: str, waited_s: float):
        self.name = name
        super().__init__(f"lock {name!r} is held elsewhere; gave up after {waited_s:g}s")


class LockProvider(Protocol):
    def lock(self, name: str, timeout_s: float = 30, blocking_timeout_s: float = 30) -> ContextManager[None]:
        ...

    def try_lock(self, name: str, timeout_s: float = 30) -> ContextManager[bool]:
        ...


class RedisLocks:
    """redis-py `Lock`s under `chatsource:lock:{name}`; they expire after `timeout_s` if the holder dies."""

    def __init__(self, redis_client):
        self.redis = redis_client

    def _lock(self, name: str, timeout_s: float, blocking_timeout_s: float | None):
        return self.redis.lock(
            f"{KEY_PREFIX}{name}", timeout=timeout_s, blocking_timeout=blocking_timeout_s, sleep=0.05
        )

    @staticmethod
    def _release(lock, name: str) -> None:
        from redis.exceptions import LockError

        try:
            lock.release()
        except LockError:
            # It expired while held (the work took longer than timeout_s) and someone else may now
            # own it; the work itself is protected by compare-and-swap writes, so only warn.
            log.warning("lock %r expired before it was released", name)

    @contextmanager
    def lock(self, name: str, timeout_s: float = 30, blocking_timeout_s: float = 30) -> Iterator[None]:
        lock = self._lock(name, timeout_s, blocking_timeout_s)
        if not lock.acquire(blocking=True, blocking_timeout=blocking_timeout_s):
            raise LockUnavailable(name, blocking_timeout_s)
        try:
            yield
        finally:
            self._release(lock, name)

    @contextmanager
    def try_lock(self, name: str, timeout_s: float = 30) -> Iterator[bool]:
        lock = self._lock(name, timeout_s, None)
        acquired = lock.acquire(blocking=False)
        try:
            yield bool(acquired)
        finally:
            if acquired:
                self._release(lock, name)


class LocalLocks:
    """Named `threading.Lock`s for a single process. `timeout_s` is accepted for interface parity:
    a thread that dies inside `with` releases the lock on the way out, so no expiry is needed."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _get(self, name: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(name)
            if lock is None:
                lock = self._locks[name] = threading.Lock()
            return lock

    @contextmanager
    def lock(self, name: str, timeout_s: float = 30, blocking_timeout_s: float = 30) -> Iterator[None]:
        lock = self._get(name)
        if not lock.acquire(timeout=max(blocking_timeout_s, 0)):
            raise LockUnavailable(name, blocking_timeout_s)
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def try_lock(self, name: str, timeout_s: float = 30) -> Iterator[bool]:
        lock = self._get(name)
        acquired = lock.acquire(blocking=False)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()
