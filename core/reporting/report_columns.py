"""The Raw data columns a user hid and the order they chose (issue 15 item 14), kept on the user's row
(`users.report_columns`) so the choice follows them to another browser.

The choice is `{"order": [key, ...], "hidden": [key, ...]}` over the report's column keys; keys the
report no longer has are dropped and a new column is shown at the end, so an old choice never hides
what it never saw. Only a user's own row is read or written (the caller passes the signed-in user).
"""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from core.models import User
from core.platform.errors import NotFound, ValidationFailed

MAX_KEY_LENGTH = 40


def column_choice(session: Session, account_id: int, user_id: int, keys: Sequence[str]) -> dict:
    """The user's choice over `keys` (the report's columns): every key once in `order`, `hidden` ⊆ keys."""
    user = _own_user(session, account_id, user_id)
    return _normalised(user.report_columns or {}, keys)


def save_column_choice(session: Session, account_id: int, user_id: int, choice, keys: Sequence[str]) -> dict:
    """Keeps `choice` (as posted by the Raw data page) for the user; returns it as stored. A choice
    that is not `{"order": [...], "hidden": [...]}` of column keys raises `ValidationFailed`."""
    if not isinstance(choice, dict):
        raise ValidationFailed("the column choice must be an object with order and hidden", "columns")
    for name in ("order", "hidden"):
        value = choice.get(name, [])
        if not isinstance(value, list) or not all(isinstance(k, str) and 0 < len(k) <= MAX_KEY_LENGTH for k in value):
            raise ValidationFailed(f"{name} must be a list of column keys", "columns")
        unknown = [k for k in value if k not in keys]
        if unknown:
            raise ValidationFailed(f"{name} names columns the report does not have: {', '.join(unknown[:5])}", "columns")
    user = _own_user(session, account_id, user_id)
    stored = _normalised(choice, keys)
    user.report_columns = stored
    return stored


def _own_user(session: Session, account_id: int, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.account_id != account_id:
        raise NotFound("user not found")
    return user


def _normalised(choice: dict, keys: Sequence[str]) -> dict:
    order = []
    for key in choice.get("order") or []:
        if key in keys and key not in order:
            order.append(key)
    order += [k for k in keys if k not in order]  # a column the choice never saw is shown
    hidden = [k for k in keys if k in set(choice.get("hidden") or [])]
    return {"order": order, "hidden": hidden}
