"""Precision and recall of click attribution (core.inbox.click_attribution) by traffic level — a simulation.

`python -m bench.click_attribution [--clicks N] [--seed S] [--levels 1,10,100] [--window 30]`

Not a speed benchmark: it runs the real `record_click` and `attribute_by_click` on a SQLite database
with simulated traffic of one account, with a fixed seed (the same figures every run):

* visitors click a messenger icon of the chat button (Telegram 60 %, WhatsApp 40 %) as a Poisson
  process of LEVEL clicks an hour; a fifth of them click again 10–90 s later (the same session);
* 60 % of the clicks become a chat: the talk begins after a log-normal delay (median 90 s, a long
  tail: some visitors write only after the window), and closes 5–60 minutes later;
* chats that did not come from the site (the messenger's own audience) arrive at 30 % of LEVEL an
  hour, half Telegram, half WhatsApp — any click attribution of those is a false one;
* talks are attributed in the order they close, as the worker sees them.

precision = right sessions / talks attributed by a click; recall = right sessions / talks that came
from a click. "guessed wrong" counts talks given a session that was not theirs; "no guess" the talks
left to the mapping because several sessions had clicked.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from core.inbox import attribution_reasons
from core.inbox.attribution import attribute
from core.inbox.click_attribution import CLOCK_SKEW, attribute_by_click, record_click
from core.models import Account, Integration, Site, VisitorSession
from core.platform.db import Base, create_engine, session_factory

START = datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc)
SERVICES = (("telegram", "telegram", 0.6), ("whatsapp", "waba", 0.4))  # button service, talk origin, share
CONVERSION = 0.6
RECLICK = 0.2
ORGANIC_SHARE = 0.3
DELAY_MEDIAN_S = 90.0
DELAY_SIGMA = 1.2  # log-normal: ~4 % of the chats begin more than 30 minutes after the click


@dataclass
class Talk:
    talk_id: int
    origin: str
    created_at: datetime
    closed_at: datetime
    true_session: int | None  # None: the chat did not come from a click on the site


@dataclass
class Figures:
    level: float
    clicks: int
    talks_from_clicks: int
    organic_talks: int
    attributed: int
    right: int
    guessed_wrong: int
    no_guess: int
    window_minutes: int = 30
    # Talks given a session although several sessions had clicked (an independent count): must be 0.
    guessed_among_several: int = 0

    @property
    def precision(self) -> float | None:  # None: no talk was attributed by a click
        return self.right / self.attributed if self.attributed else None

    @property
    def recall(self) -> float:
        return self.right / self.talks_from_clicks if self.talks_from_clicks else 1.0


def _pick_service(rng: random.Random) -> tuple[str, str]:
    roll, total = rng.random(), 0.0
    for service, origin, share in SERVICES:
        total += share
        if roll < total:
            return service, origin
    return SERVICES[-1][0], SERVICES[-1][1]


def _world(db) -> tuple[Site, Integration]:
    account = Account(name="Simulated shop")
    db.add(account)
    db.flush()
    site = Site(account_id=account.id, name="Shop", domain="shop.example.ru", site_key="sim" + "0" * 21)
    db.add(site)
    db.flush()
    integration = Integration(account_id=account.id, name="amo", amocrm_url="https://sim.amocrm.ru",
                              token_url="https://sim.amocrm.ru/oauth2/access_token", webhook_token_hash="s" * 64,
                              webhook_token_enc="x", session_field_id=1)
    db.add(integration)
    db.commit()
    return site, integration


def simulate(level: float, *, clicks: int = 600, seed: int = 14, window_minutes: int = 30,
             organic_share: float = ORGANIC_SHARE, workdir: Path | None = None) -> Figures:
    """One traffic level: `clicks` first clicks at `level` an hour, and what attribution made of them."""
    rng = random.Random(f"{seed}:{level}")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'sim.db'}")
        Base.metadata.create_all(engine)
        try:
            with session_factory(engine)() as db:
                site, integration = _world(db)
                integration.click_window_minutes = window_minutes
                talks, clicked = _traffic(db, site, rng, level, clicks, organic_share)
                return _attribute_all(db, integration, talks, clicked, level, clicks)
        finally:
            engine.dispose()


def _traffic(db, site: Site, rng: random.Random, level: float, clicks: int,
             organic_share: float) -> tuple[list[Talk], list[list]]:
    """The talks, and every click as [session id, talk origin, time, claimed] for the independent count."""
    talks: list[Talk] = []
    clicked: list[list] = []
    at = START
    for n in range(clicks):
        at += timedelta(hours=rng.expovariate(level))
        vs = VisitorSession(account_id=site.account_id, site_id=site.id, visitor_id=f"sim-visitor-{n:06d}",
                            started_at=at - timedelta(minutes=2), last_activity_at=at)
        db.add(vs)
        db.flush()
        service, origin = _pick_service(rng)
        record_click(db, site, vs, service, None, at)
        clicked.append([vs.id, origin, at, False])
        if rng.random() < RECLICK:
            again = at + timedelta(seconds=rng.uniform(10, 90))
            record_click(db, site, vs, service, None, again)
            clicked.append([vs.id, origin, again, False])
        if rng.random() < CONVERSION:
            created = at + timedelta(seconds=rng.lognormvariate(math.log(DELAY_MEDIAN_S), DELAY_SIGMA))
            talks.append(Talk(len(talks) + 1, origin, created, created + timedelta(minutes=rng.uniform(5, 60)), vs.id))
    end, organic_at = at, START
    while organic_share > 0:
        organic_at += timedelta(hours=rng.expovariate(level * organic_share))
        if organic_at > end:
            break
        origin = "telegram" if rng.random() < 0.5 else "waba"
        talks.append(Talk(len(talks) + 1, origin, organic_at, organic_at + timedelta(minutes=rng.uniform(5, 60)), None))
    db.commit()
    return talks, clicked


def _attribute_all(db, integration: Integration, talks: list[Talk], clicked: list[list], level: float,
                   clicks: int) -> Figures:
    window = timedelta(minutes=integration.click_window_minutes)
    figures = Figures(level, clicks, sum(t.true_session is not None for t in talks),
                      sum(t.true_session is None for t in talks), 0, 0, 0, 0, integration.click_window_minutes)
    for talk in sorted(talks, key=lambda t: t.closed_at):
        base = attribute(db, integration, session_field_value=None, origin=talk.origin, mappings={})
        result = attribute_by_click(db, integration, base, origin=talk.origin, talk_id=talk.talk_id,
                                    talk_created_at=talk.created_at)
        db.flush()  # one transaction for the run: the claims are seen by the next talks all the same
        # The simulation's own count of the sessions that could have been meant.
        in_window = [c for c in clicked if c[1] == talk.origin and not c[3]
                     and talk.created_at - window <= c[2] <= talk.created_at + CLOCK_SKEW]
        if result.kind == "session":
            for c in in_window:
                if c[0] == result.session.id:
                    c[3] = True
            if len({c[0] for c in in_window}) > 1:
                figures.guessed_among_several += 1
        if result.kind == "session":
            figures.attributed += 1
            if result.session.id == talk.true_session:
                figures.right += 1
            else:
                figures.guessed_wrong += 1
        elif result.reason.code == attribution_reasons.CLICK_AMBIGUOUS.code:
            figures.no_guess += 1
    return figures


def table(rows: list[Figures]) -> str:
    lines = ["| clicks/hour/account | window, min | talks from clicks | other talks | precision | recall | guessed wrong "
             "| no guess (several) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for f in rows:
        lines.append(f"| {f.level:g} | {f.window_minutes} | {f.talks_from_clicks} | {f.organic_talks} "
                     f"| {'—' if f.precision is None else format(f.precision, '.3f')} "
                     f"| {f.recall:.3f} | {f.guessed_wrong} | {f.no_guess} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.click_attribution", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=600, help="clicks simulated per traffic level")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--levels", default="1,10,100", help="clicks an hour per account, comma-separated")
    parser.add_argument("--windows", default="30,5", help="the integration's click window(s), minutes, comma-separated")
    args = parser.parse_args(argv)
    rows = [simulate(float(level), clicks=args.clicks, seed=args.seed, window_minutes=int(window))
            for window in args.windows.split(",") for level in args.levels.split(",")]
    print(f"click attribution, {args.clicks} clicks per level, seed {args.seed}")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
