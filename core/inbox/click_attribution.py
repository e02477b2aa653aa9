"""Messenger chats tied to the site visit by the click on the site's chat button (issue 14 §1).

A visitor on the site clicks the amoCRM button's Telegram (WhatsApp…) icon; the chat then happens in
the messenger app, and the lead amoCRM makes for it has no session in our field (setMeta reaches only
chats opened in the site widget). The script for your site reports each such click to `/t/collect`
as a `messenger_click` (`record_click` stores it against the visitor's live session).

When a closed talk of that channel has no session of its own, `attribute_by_click` looks at this
account's clicks of that channel in the integration's window before the talk began
(`click_window_minutes`, default 30, 0 = off):

* exactly one session clicked → the talk is attributed to that session, and claims its clicks so
  they attribute no other talk (a conditional UPDATE on the click rows: on PostgreSQL the second of
  two racing workers waits for the first's row locks, re-reads the claim and finds it taken);
* several sessions clicked → no guess: the mapping (or default) stands and the reason says how many;
* none → nothing changes.

The talk's own session field always wins: a talk attributed by its field is never looked at here.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.amocrm.messengers import channel_for_button, channel_for_origin, channel_message

# The campaign/source wording of reasons is attribution's; reused so a click reason reads the same.
from core.inbox import attribution_reasons as reasons
from core.inbox.attribution import Attribution, describe_target
from core.models import Integration, MessengerClick, Site, VisitorSession
from core.platform.db import utcnow
from core.platform.messages import Message
from core.tracking.collect import Hit, current_session, is_bot

CLICK_EVENT = "messenger_click"
MAX_SERVICE_LENGTH = 50
MAX_WINDOW_MINUTES = 24 * 60
# amoCRM stamps the talk by its clock, we stamp the click by ours: a click this much after the
# talk's start still counts (a guess; the visitor needs longer than that to open the app and write).
CLOCK_SKEW = timedelta(seconds=60)
# Talks of these channels are never attributed by a click: no button icon opens them.
UNCLICKABLE_CHANNELS = frozenset({"email", "other", "unknown"})
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class ClickRecorded:
    tracked: bool
    visitor_id: str | None
    session_id: int | None

    def to_dict(self) -> dict:
        return {"tracked": self.tracked, "visitor_id": self.visitor_id, "session_id": self.session_id,
                "new_session": False}


# --------------------------------------------------------------------------- the click


def collect_click(session: Session, site: Site, hit: Hit, *, user_agent: str | None = None,
                  now: datetime | None = None) -> ClickRecorded:
    """`/t/collect`'s messenger_click: stored against the visitor's live session; a click never starts
    a session (without one there is nothing to attribute a chat to), and bots' clicks are dropped."""
    if is_bot(user_agent) or not hit.visitor_id or not hit.service:
        return ClickRecorded(False, hit.visitor_id, None)
    now = now or utcnow()
    vs = current_session(session, site, hit, hit.visitor_id, now)
    click = record_click(session, site, vs, hit.service, hit.link, now)
    return ClickRecorded(click is not None, hit.visitor_id, vs.id if vs else None)


def record_click(session: Session, site: Site, vs: VisitorSession | None, service: str, link: str | None = None,
                 now: datetime | None = None) -> MessengerClick | None:
    """Store a click of the visitor whose live session is `vs` (None: nothing to attribute to, kept
    nowhere). The click is activity too: the session's idle clock restarts. Flushes; the caller commits."""
    if vs is None:
        return None
    now = now or utcnow()
    click = MessengerClick(account_id=site.account_id, site_id=site.id, session_id=vs.id,
                           service=service[:MAX_SERVICE_LENGTH], channel=channel_for_button(service, link),
                           clicked_at=now)
    session.add(click)
    session.execute(sa.update(VisitorSession).where(VisitorSession.id == vs.id).values(last_activity_at=now))
    session.flush()
    return click


# --------------------------------------------------------------------------- the talk


def _window(integration: Integration) -> timedelta:
    return timedelta(minutes=min(integration.click_window_minutes, MAX_WINDOW_MINUTES))


def channels_with_clicks(session: Session, integration: Integration,
                         talks: list[tuple[str | None, int, datetime]]) -> frozenset[str]:
    """For a batch of talks — (origin, talk id, creation time) each — the channels that have any click
    `attribute_by_click` could look at for one of them: one query for the batch, so a talk whose
    channel is not in the answer needs none of its own (most talks of most accounts). A superset of
    each talk's own candidates (the batch's earliest window to its latest), never a subset."""
    if not integration.click_window_minutes:
        return frozenset()
    wanted = [(channel_for_origin(origin), talk_id, created_at) for origin, talk_id, created_at in talks]
    wanted = [w for w in wanted if w[0] not in UNCLICKABLE_CHANNELS]
    if not wanted:
        return frozenset()
    c = MessengerClick
    rows = session.scalars(
        sa.select(c.channel).distinct()
        .where(
            c.account_id == integration.account_id,
            c.channel.in_(sorted({w[0] for w in wanted})),
            c.clicked_at >= min(w[2] for w in wanted) - _window(integration),
            c.clicked_at <= max(w[2] for w in wanted) + CLOCK_SKEW,
            sa.or_(c.claimed_talk_id.is_(None),
                   sa.and_(c.claimed_integration_id == integration.id,
                           c.claimed_talk_id.in_(sorted({w[1] for w in wanted})))),
        )
    )
    return frozenset(rows)


def attribute_by_click(session: Session, integration: Integration, result: Attribution, *, origin: str | None,
                       talk_id: int, talk_created_at: datetime,
                       clicked_channels: frozenset[str] | None = None) -> Attribution:
    """`result` (the field → mapping → default answer) or, when the talk has no session of its own and
    one session clicked its messenger's button in the window, that session. Flushes the claim.
    `clicked_channels`: the batch's `channels_with_clicks` (None: look without it)."""
    if result.kind == "session" or not integration.click_window_minutes:
        return result
    channel = channel_for_origin(origin)
    if channel in UNCLICKABLE_CHANNELS:
        return result
    if clicked_channels is not None and channel not in clicked_channels:
        return result
    window = _window(integration)
    for _attempt in range(CLAIM_ATTEMPTS):
        by_session = _candidates(session, integration, channel, talk_id, talk_created_at, window)
        if not by_session:
            return result
        if len(by_session) > 1:
            return replace(result, reason=click_reason("ambiguous", reason=result.reason, channel=channel,
                                                       candidates=len(by_session),
                                                       window_minutes=int(window.total_seconds() // 60)))
        (session_id, clicks), = by_session.items()
        if _claim(session, integration, talk_id, [c.id for c in clicks]):
            return _session_attribution(session, session_id, channel, talk_created_at - clicks[-1].clicked_at)
        # Another talk claimed these clicks between our read and our claim: look again.
    return result


def _candidates(session: Session, integration: Integration, channel: str, talk_id: int, created_at: datetime,
                window: timedelta) -> dict[int, list[MessengerClick]]:
    """Unclaimed clicks (or clicks this very talk claimed on an earlier attempt) by session, oldest first."""
    mine = sa.and_(MessengerClick.claimed_integration_id == integration.id, MessengerClick.claimed_talk_id == talk_id)
    rows = session.scalars(
        sa.select(MessengerClick)
        .where(
            MessengerClick.account_id == integration.account_id,
            MessengerClick.channel == channel,
            MessengerClick.clicked_at >= created_at - window,
            MessengerClick.clicked_at <= created_at + CLOCK_SKEW,
            sa.or_(MessengerClick.claimed_talk_id.is_(None), mine),
        )
        .order_by(MessengerClick.clicked_at, MessengerClick.id)
    )
    by_session: dict[int, list[MessengerClick]] = {}
    for click in rows:
        by_session.setdefault(click.session_id, []).append(click)
    return by_session


def _claim(session: Session, integration: Integration, talk_id: int, click_ids: list[int]) -> bool:
    """Claim the clicks for this talk; False when another talk took them all first."""
    claimed = session.execute(
        sa.update(MessengerClick)
        .where(
            MessengerClick.id.in_(click_ids),
            sa.or_(
                MessengerClick.claimed_talk_id.is_(None),
                sa.and_(MessengerClick.claimed_integration_id == integration.id, MessengerClick.claimed_talk_id == talk_id),
            ),
        )
        .values(claimed_integration_id=integration.id, claimed_talk_id=talk_id, claimed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    for click_id in click_ids:  # the ORM copies read above are stale now
        cached = session.get(MessengerClick, click_id)
        if cached is not None:
            session.expire(cached)
    return (claimed.rowcount or 0) > 0


def _session_attribution(session: Session, session_id: int, channel: str, before: timedelta) -> Attribution:
    vs = session.get(VisitorSession, session_id)
    described = describe_target(session, vs.campaign_id, vs.source_id, vs.site_id)
    return Attribution(
        kind="session",
        reason=click_reason("session", channel=channel, seconds_before=max(int(before.total_seconds()), 0),
                            session_id=vs.id, described=described),
        session=vs, site_id=vs.site_id, campaign_id=vs.campaign_id, source_id=vs.source_id,
    )


def click_reason(code: str, **params) -> Message:
    """Every reason of click attribution, in one place (a `Message`: said in the reader's language).

    session:   channel, seconds_before, session_id, described; ambiguous: reason, channel, candidates, window_minutes
    """
    channel = channel_message(params["channel"]) or params["channel"]
    if code == "session":
        seconds = params["seconds_before"]
        ago = reasons.SECONDS(n=seconds) if seconds < 60 else reasons.MINUTES(n=round(seconds / 60))
        return reasons.CLICK_SESSION(channel=channel, ago=ago, session=params["session_id"], target=params["described"])
    if code == "ambiguous":
        return reasons.CLICK_AMBIGUOUS(reason=params["reason"], channel=channel, minutes=params["window_minutes"],
                                       candidates=params["candidates"])
    raise ValueError(f"unknown click reason {code!r}")
