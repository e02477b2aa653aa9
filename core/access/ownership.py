"""One account never sees or touches another's rows: every lookup by id goes through `get_owned`."""
from __future__ import annotations

from sqlalchemy.orm import Session

from core.platform.errors import NotFound


def get_owned(session: Session, model, account_id: int, id_) -> object:
    """The row if it exists in this account; other accounts' rows are as good as absent."""
    try:
        id_ = int(id_)
    except (TypeError, ValueError):
        raise NotFound(f"{model.__tablename__[:-1]} {id_!r} not found")
    row = session.get(model, id_)
    if row is None or row.account_id != account_id:
        raise NotFound(f"{model.__tablename__[:-1]} {id_} not found")
    return row
