"""Admin sign-in with a brake on password guessing.

Five wrong passwords in a row are free (people mistype); from then on the account is locked for
30 s, 60 s, 120 s … (doubling, at most 15 minutes) after each further failure. While it is locked
even the right password is refused without being checked, so a guesser gains nothing by hammering;
the wait is short enough that the real admin is only slowed down, never locked out for good. A
successful sign-in resets the counter. Unknown e-mails cost the same password-hash time as known
ones, so the answer's timing does not tell which e-mails exist, and the web layer gives every
failure (unknown e-mail, wrong password, locked, switched off) the same answer. The counter is
incremented in the database (`failed_logins = failed_logins + 1 … RETURNING`), so guesses sent in
parallel are all counted. Guessing across many e-mails is held back by a per-IP quota (web/auth.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.access.accounts import check_password
from core.access.passwords import hash_password, verify_password
from core.models import User
from core.platform.db import utcnow

FREE_FAILURES = 5
FIRST_LOCK_SECONDS = 30
MAX_LOCK_SECONDS = 15 * 60


@dataclass
class LoginResult:
    status: str  # ok | invalid | locked | inactive
    user: User | None = None
    retry_after: int = 0  # seconds until the next attempt is accepted (locked, or invalid that started a lock)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def lock_seconds(failed_logins: int) -> int:
    """How long the account stays locked after its `failed_logins`-th failure in a row."""
    if failed_logins < FREE_FAILURES:
        return 0
    return min(FIRST_LOCK_SECONDS * 2 ** (failed_logins - FREE_FAILURES), MAX_LOCK_SECONDS)


def locked_for(user: User, now: datetime | None = None) -> int:
    """Whole seconds the user must still wait, 0 when a password may be tried."""
    seconds = lock_seconds(user.failed_logins or 0)
    if not seconds or user.last_failed_login_at is None:
        return 0
    remaining = (user.last_failed_login_at + timedelta(seconds=seconds) - (now or utcnow())).total_seconds()
    return max(0, math.ceil(remaining))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("not-a-real-password")


def authenticate(session: Session, email: str | None, password: str | None, now: datetime | None = None) -> LoginResult:
    """Check a sign-in attempt and record its outcome on the user row. The caller commits."""
    now = now or utcnow()
    email = (email or "").strip().lower()
    user = session.scalar(sa.select(User).where(User.email == email)) if email and len(email) <= 254 else None
    if user is None:
        verify_password(_dummy_hash(), password or "")
        return LoginResult("invalid")
    wait = locked_for(user, now)
    if wait:
        return LoginResult("locked", user, wait)
    if not check_password(user, password or ""):
        failed = session.execute(
            sa.update(User).where(User.id == user.id)
            .values(failed_logins=User.failed_logins + 1, last_failed_login_at=now)
            .returning(User.failed_logins),
            execution_options={"synchronize_session": False},
        ).scalar_one()
        # The database's count (parallel guesses included), onto the object without a write of its own.
        set_committed_value(user, "failed_logins", failed)
        set_committed_value(user, "last_failed_login_at", now)
        return LoginResult("invalid", user, locked_for(user, now))
    if not user.is_active:
        return LoginResult("inactive", user)
    user.failed_logins = 0
    user.last_failed_login_at = None
    user.last_login_at = now
    return LoginResult("ok", user)
