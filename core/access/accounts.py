"""Accounts (one client's analytics account, "ЛК"), their admin users and Data API tokens."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.access.passwords import hash_password, verify_password
from core.models import Account, ApiToken, Integration, User
from core.platform.crypto import new_token, sha256_hex
from core.platform.db import utcnow

API_TOKEN_PREFIX = "cs_"


class AccountError(ValueError):
    pass


def ensure_first_account(session: Session, name: str = "Мой аккаунт") -> Account:
    """The first start creates one account; later starts find it."""
    account = session.scalar(sa.select(Account).order_by(Account.id).limit(1))
    if account is None:
        account = Account(name=name)
        session.add(account)
        session.flush()
    return account


def create_account(session: Session, name: str) -> Account:
    name = (name or "").strip()
    if not name:
        raise AccountError("give the account a name")
    if len(name) > 200:
        raise AccountError("the account name is longer than 200 characters")
    account = Account(name=name)
    session.add(account)
    session.flush()
    return account


@dataclass(frozen=True)
class AccountSummary:
    id: int
    name: str
    created_at: datetime
    users: int
    integrations: int


def list_accounts(session: Session) -> list[AccountSummary]:
    """Every account with how many users and integrations it has (the operator's `accounts list`)."""
    users = sa.select(sa.func.count(User.id)).where(User.account_id == Account.id).scalar_subquery()
    integrations = sa.select(sa.func.count(Integration.id)).where(Integration.account_id == Account.id).scalar_subquery()
    rows = session.execute(sa.select(Account.id, Account.name, Account.created_at, users, integrations).order_by(Account.id))
    return [AccountSummary(*row) for row in rows]


def account_for_command(session: Session, account_id: int | None) -> Account:
    """The account an operator's command acts on. Without --account only a single-account install
    may guess: with several, a token or user silently landing in the first account is a data leak."""
    if account_id is not None:
        account = session.get(Account, account_id)
        if account is None:
            raise AccountError(f"account {account_id} does not exist (see `accounts list`)")
        return account
    accounts = session.scalars(sa.select(Account).order_by(Account.id).limit(2)).all()
    if len(accounts) > 1:
        raise AccountError("there are several accounts: say which with --account N (see `accounts list`)")
    return accounts[0] if accounts else ensure_first_account(session)


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        raise AccountError(f"not an email address: {email!r}")
    return email


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(sa.select(User).where(User.email == normalise_email(email)))


def set_user(session: Session, account_id: int, email: str, password: str) -> User:
    """Create the user, or reset the password of an existing one (ADMIN_EMAIL on start, the CLI)."""
    email = normalise_email(email)
    if not password or len(password) < 8:
        raise AccountError("the password must be at least 8 characters")
    user = session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        user = User(account_id=account_id, email=email, password_hash="")
        session.add(user)
    elif user.account_id != account_id:
        # Resetting it would hand another client's admin sign-in to whoever runs the command for this one.
        raise AccountError(f"{email} belongs to another account ({user.account_id}); "
                           "a user is in exactly one account, use another email")
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.is_active = True
    rotate_session_nonce(user)  # a new password signs out every session of the old one
    session.flush()
    return user


def rotate_session_nonce(user: User) -> None:
    """Sessions carry the user's nonce; a new one ends all of them (sign-out, password change)."""
    user.session_nonce = new_token(16)[:32]


def check_password(user: User, password: str) -> bool:
    return bool(user.password_hash) and verify_password(user.password_hash, password or "")


def create_api_token(session: Session, account_id: int, name: str) -> tuple[ApiToken, str]:
    """Returns the row and the token itself: it is shown once and only its hash is kept."""
    name = (name or "").strip()
    if not name:
        raise AccountError("give the token a name")
    plaintext = API_TOKEN_PREFIX + new_token(32)
    token = ApiToken(account_id=account_id, name=name[:200], token_hash=sha256_hex(plaintext), prefix=plaintext[:10])
    session.add(token)
    session.flush()
    return token, plaintext


def authenticate_api_token(session: Session, plaintext: str) -> ApiToken | None:
    if not plaintext or len(plaintext) > 200:
        return None
    token = session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == sha256_hex(plaintext)))
    if token is None or token.revoked_at is not None:
        return None
    now = utcnow()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
    return token


def revoke_api_token(session: Session, account_id: int, token_id: int) -> bool:
    token = session.get(ApiToken, token_id)
    if token is None or token.account_id != account_id:
        return False
    token.revoked_at = utcnow()
    return True


def bootstrap(session: Session, admin_email: str | None, admin_password: str | None) -> tuple[Account, User | None]:
    """First start: one account, and the ADMIN_EMAIL user if it does not exist yet (an existing
    user's password is never overwritten from the environment)."""
    account = ensure_first_account(session)
    created = None
    if admin_email and admin_password:
        email = normalise_email(admin_email)
        if session.scalar(sa.select(User).where(User.email == email)) is None:
            created = set_user(session, account.id, email, admin_password)
    return account, created
