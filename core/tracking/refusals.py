"""What the tracking endpoint refused, per site (issue 15 §12), and when it last received a page view.

The collect path is hot, so a refusal costs at most one UPDATE of the site's row a minute per reason:
the row is already loaded for the hit, and while the same reason was written less than a minute
ago nothing is written at all. The last page view received is read from the sessions (the newest
ones of the site), so accepted hits cost nothing more."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.models import Site, VisitorSession
from core.platform.db import utcnow

REASONS = ("wrong_domain", "bot")
WRITE_EVERY = timedelta(minutes=1)


def note_refusal(session: Session, site, reason: str, detail: str | None, *, now: datetime | None = None) -> bool:
    """Record a refused page view of `site` (a Site, or collect's plain row with id, last_refused_reason
    and last_refused_at); True when written. The caller commits."""
    now = now or utcnow()
    if (site.last_refused_reason == reason and site.last_refused_at is not None
            and now - site.last_refused_at < WRITE_EVERY):
        return False
    session.execute(sa.update(Site).where(Site.id == site.id).values(
        last_refused_at=now, last_refused_reason=reason, last_refused_detail=(detail or "")[:300] or None))
    return True


def last_page_views(session: Session, site_ids: list[int]) -> dict[int, datetime]:
    """Per site, the latest activity among its 50 newest sessions (through the site_id index)."""
    seen: dict[int, datetime] = {}
    for site_id in site_ids:
        newest = (sa.select(VisitorSession.last_activity_at).where(VisitorSession.site_id == site_id)
                  .order_by(VisitorSession.id.desc()).limit(50).subquery())
        value = session.scalar(sa.select(sa.func.max(newest.c.last_activity_at)))
        if value is not None:
            seen[site_id] = value
    return seen
