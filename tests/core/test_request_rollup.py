"""The dashboard's daily roll-up (core.reporting.rollup) equals a COUNT over the raw requests after any
mix of inserts, replays (the same talk again), updates and deletes — its own, cascaded, or bulk —
and repeat recomputes flipping requests between new and repeat; the dashboard it feeds shows the
numbers the raw rows give."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.integrations import settings as integrations
from core.models import Campaign, ChatRequest, Integration, RequestDailyCount, Source
from core.platform.db import insert_ignoring_conflicts
from core.reporting import dashboard
from core.reporting import rollup as request_rollup
from core.tracking.catalog import create_campaign, create_source
from tests.helpers.report_data import add_requests_bulk, request_values, seed_catalog

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
CHANNELS = ("telegram", "whatsapp", "site_chat")
ATTRIBUTIONS = ("session", "messenger", "default")


def _moment(minutes: int) -> datetime:
    # Minutes over ~40 days: many requests land near local midnight (21:00 UTC) on either side.
    return START + timedelta(minutes=minutes)


def _exact(session, account_id):
    assert request_rollup.differences(session.connection(), account_id) == {}


class World:
    """An account with two integrations, two campaigns and a source, and the talk ids used so far."""

    def __init__(self, session, services, account_id):
        cat = seed_catalog(session, services, account_id)
        other = integrations.create_integration(session, services, account_id, {"name": "Филиал"})
        session.flush()
        self.session, self.services, self.account_id = session, services, account_id
        self.integration_ids = [cat.integration_id, other.id]
        self.campaign_ids = [cat.campaign_id, cat.other_campaign_id]
        self.source_ids = [cat.source_id]
        self.site_id = cat.site_id
        self.talks: list[tuple[int, int]] = []
        self.next_talk = 1

    def values(self, integration: int, minutes: int, channel: int, campaign: int, source: int, attribution: int, talk=None):
        """`attribution` 0…5 also says new (0–2) or repeat (3–5)."""
        campaigns, sources = [None, *self.campaign_ids], [None, *self.source_ids]
        talk = talk if talk is not None else self.next_talk
        return request_values(self.account_id, self.integration_ids[integration % len(self.integration_ids)],
                              _moment(minutes), talk_id=talk, channel=CHANNELS[channel % 3],
                              campaign_id=campaigns[campaign % len(campaigns)], source_id=sources[source % len(sources)],
                              attribution=ATTRIBUTIONS[attribution % 3], is_repeat=attribution % 6 >= 3)

    def apply(self, op):
        kind, *args = op
        s = self.session
        if kind == "insert":  # what core.inbox.talk_processing.record_request runs
            values = self.values(*args)
            if insert_ignoring_conflicts(s, ChatRequest.__table__, values, ["integration_id", "talk_id"]):
                self.talks.append((values["integration_id"], values["talk_id"]))
            self.next_talk += 1
        elif kind == "bulk":  # one multi-row statement, as a bulk load or a batch insert
            rows = [self.values(*a, talk=self.next_talk + i) for i, a in enumerate(args[0])]
            self.next_talk += len(rows)
            add_requests_bulk(s, rows)
            self.talks += [(r["integration_id"], r["talk_id"]) for r in rows]
        elif kind == "replay" and self.talks:  # the same talk recorded again: a conflict, nothing counted
            integration_id, talk = self.talks[args[0] % len(self.talks)]
            values = self.values(self.integration_ids.index(integration_id), *args[1:], talk=talk)
            assert insert_ignoring_conflicts(s, ChatRequest.__table__, values, ["integration_id", "talk_id"]) is None
        elif kind == "update" and self.talks:  # any key column moved: another day, channel, attribution…
            integration_id, talk = self.talks[args[0] % len(self.talks)]
            moved = self.values(0, *args[1:])
            s.execute(sa.update(ChatRequest).where(ChatRequest.integration_id == integration_id, ChatRequest.talk_id == talk)
                      .values(**{k: moved[k] for k in ("created_at", "channel", "campaign_id", "source_id", "attribution",
                                                        "is_repeat")}))
        elif kind == "recompute" and self.talks:  # core.inbox.repeat_requests: is_repeat rewritten, one executemany UPDATE
            picked = {self.talks[i % len(self.talks)] for i in args[0]}
            rows = s.execute(sa.select(ChatRequest.id, ChatRequest.is_repeat).where(
                sa.tuple_(ChatRequest.integration_id, ChatRequest.talk_id).in_(sorted(picked)))).all()
            changes = [{"rid": rid, "repeat": not flag} for rid, flag in rows]
            table = ChatRequest.__table__
            s.execute(sa.update(table).where(table.c.id == sa.bindparam("rid")).values(is_repeat=sa.bindparam("repeat")),
                      changes)
        elif kind == "delete" and self.talks:
            integration_id, talk = self.talks.pop(args[0] % len(self.talks))
            s.execute(sa.delete(ChatRequest).where(ChatRequest.integration_id == integration_id, ChatRequest.talk_id == talk))
        elif kind == "drop_campaign" and self.campaign_ids:  # requests keep their rows, campaign_id → NULL
            s.execute(sa.delete(Campaign).where(Campaign.id == self.campaign_ids.pop(args[0] % len(self.campaign_ids))))
            self.campaign_ids.append(create_campaign(s, self.account_id, f"Кампания {self.next_talk}", self.site_id).id)
        elif kind == "drop_source" and self.source_ids:
            s.execute(sa.delete(Source).where(Source.id == self.source_ids.pop()))
            self.source_ids.append(create_source(s, self.account_id, f"Источник {self.next_talk}").id)
        s.flush()


small = st.integers(0, 5)
row = st.tuples(st.integers(0, 1), st.integers(0, 60 * 24 * 40), small, small, small, small)
operation = st.one_of(
    row.map(lambda r: ("insert", *r)),
    st.lists(row, min_size=1, max_size=6).map(lambda rows: ("bulk", rows)),
    st.tuples(st.integers(0, 99), st.integers(0, 60 * 24 * 40), small, small, small, small).map(lambda t: ("replay", *t)),
    st.tuples(st.integers(0, 99), st.integers(0, 60 * 24 * 40), small, small, small, small).map(lambda t: ("update", *t)),
    st.integers(0, 99).map(lambda i: ("delete", i)),
    st.lists(st.integers(0, 99), min_size=1, max_size=5).map(lambda picked: ("recompute", picked)),
    st.integers(0, 9).map(lambda i: ("drop_campaign", i)),
    st.just(("drop_source",)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(operation, min_size=1, max_size=25))
def test_rollup_equals_a_count_of_the_raw_rows(services, account_id, operations):
    with services.session_factory() as session:
        world = World(session, services, account_id)
        for op in operations:
            world.apply(op)
            _exact(session, account_id)
        session.rollback()  # each example starts from an empty account; the rollback undoes the roll-up too
        assert session.scalar(sa.select(sa.func.count()).select_from(RequestDailyCount)) == 0


def test_committed_changes_and_cascades_keep_it_exact(services, account_id):
    with services.session_factory() as session:
        world = World(session, services, account_id)
        for minutes in (0, 20 * 60 + 59, 21 * 60, 21 * 60 + 1, 3000, 3000):  # 21:00 UTC is midnight in Moscow
            world.apply(("insert", 0, minutes, 1, 1, 1, 2))
            world.apply(("insert", 1, minutes, 2, 0, 0, 0))
        session.commit()
        _exact(session, account_id)
        per_day = dict(session.execute(sa.select(RequestDailyCount.day, sa.func.sum(RequestDailyCount.n))
                                       .group_by(RequestDailyCount.day)).all())
        assert {str(day)[:10]: int(n) for day, n in per_day.items()} == {"2026-01-01": 4, "2026-01-02": 4, "2026-01-03": 4}

        world.apply(("drop_campaign", 0))
        session.commit()
        _exact(session, account_id)
        assert session.scalar(sa.select(sa.func.count()).select_from(RequestDailyCount)
                              .where(RequestDailyCount.campaign_id == world.campaign_ids[-1])) == 0

        session.execute(sa.delete(Integration).where(Integration.id == world.integration_ids[1]))  # cascades
        session.commit()
        _exact(session, account_id)
        assert session.scalar(sa.select(sa.func.sum(RequestDailyCount.n))) == 6


def test_rebuild_recomputes_it_from_the_raw_rows(services, account_id):
    with services.session_factory() as session:
        world = World(session, services, account_id)
        world.apply(("bulk", [(0, m, m, m, m, m) for m in range(0, 3000, 97)]))
        session.execute(sa.delete(RequestDailyCount))
        assert request_rollup.differences(session.connection(), account_id) != {}  # the check can see a gap
        request_rollup.rebuild(session.connection(), account_id)
        _exact(session, account_id)


def test_the_triggers_exist_at_the_head(services):
    """A later migration that copies `requests` on SQLite (alembic batch mode) would drop them."""
    with services.session_factory() as session:
        assert request_rollup.installed_triggers(session.connection()) >= set(request_rollup.TRIGGER_NAMES)


@pytest.mark.parametrize("integration", [None, 0])
def test_the_dashboard_from_the_rollup_equals_the_one_from_the_raw_rows(services, account_id, integration):
    """Europe/Moscow reads the roll-up; Etc/GMT-3 is the same clock since 2014 but reads the raw rows."""
    with services.session_factory() as session:
        world = World(session, services, account_id)
        world.apply(("bulk", [(m % 2, (m * 7919) % (60 * 24 * 60), m, m // 3, m // 5, m // 2) for m in range(400)]))
        world.apply(("drop_campaign", 1))
        session.commit()
        iid = None if integration is None else world.integration_ids[integration]
        now = START + timedelta(days=45)
        kwargs = dict(integration_id=iid, now=now, today=now.date())
        rolled = dashboard.build_dashboard(session, account_id, "2026-01-20", "2026-02-14", tz="Europe/Moscow", **kwargs)
        raw = dashboard.build_dashboard(session, account_id, "2026-01-20", "2026-02-14", tz="Etc/GMT-3", **kwargs)
    assert rolled["total"] > 50 and rolled["attribution"]["previous"]["total"] > 50
    assert rolled["repeat"]["new"] > 20 and rolled["repeat"]["repeat"] > 20
    rolled["range"].pop("tz"), raw["range"].pop("tz")
    assert rolled == raw


def _raw_count(session, account_id, flt) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(ChatRequest).where(*flt.conditions(account_id)))


moment = st.integers(-60 * 24 * 2, 60 * 24 * 42).map(_moment)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bounds=st.tuples(st.none() | moment, st.none() | moment), by=st.tuples(small, small, small, small, small),
       operations=st.lists(operation, min_size=1, max_size=8))
def test_the_raw_data_total_read_from_the_rollup_equals_a_count_of_the_rows(services, account_id, bounds, by, operations):
    """Raw data's total (core.reporting.report.count_requests) sums whole local days from the roll-up and counts the
    rows of the partial days at the edges: the number is the COUNT over the raw rows for any range and filter."""
    from core.reporting.report import NONE_ID, RequestFilter, count_requests

    with services.session_factory() as session:
        world = World(session, services, account_id)
        world.apply(("bulk", [(m % 2, (m * 7919) % (60 * 24 * 40), m, m // 3, m // 5, m // 2) for m in range(120)]))
        for op in operations:
            world.apply(op)
        integration, channel, campaign, source, attribution = by
        campaigns, sources = [None, NONE_ID, *world.campaign_ids], [None, NONE_ID, *world.source_ids]
        date_from, date_till = bounds
        if date_from and date_till and date_from > date_till:
            date_from, date_till = date_till, date_from
        filters = [
            RequestFilter(date_from=date_from, date_till=date_till),
            RequestFilter(date_from=date_from, date_till=date_till,
                          integration_id=[None, *world.integration_ids][integration % 3],
                          channel=[None, *CHANNELS][channel % 4], campaign_id=campaigns[campaign % len(campaigns)],
                          source_id=sources[source % len(sources)], attribution=[None, *ATTRIBUTIONS][attribution % 4]),
            RequestFilter(date_from=date_from, date_till=date_till, site_id=world.site_id),  # not in the roll-up
        ]
        for flt in filters:
            assert count_requests(session, account_id, flt) == _raw_count(session, account_id, flt), flt
        session.rollback()


def test_the_raw_data_total_of_whole_days_as_the_admin_asks_for_them(services, account_id):
    """The admin's «from» and «till» days (00:00 and 23:59:59.999999 local): exact at both midnights."""
    from core.reporting.report import RequestFilter, count_requests

    with services.session_factory() as session:
        world = World(session, services, account_id)
        for minutes in (0, 20 * 60 + 59, 21 * 60, 21 * 60 + 1, 3000, 2 * 1440 + 21 * 60 - 1, 2 * 1440 + 21 * 60):
            world.apply(("insert", 0, minutes, 0, 0, 0, 0))
        session.commit()
        flt = RequestFilter.from_params({"date_from": "2026-01-02", "date_till": "2026-01-03"}, tz="Europe/Moscow")
        assert count_requests(session, account_id, flt) == _raw_count(session, account_id, flt) == 4
        assert count_requests(session, account_id, RequestFilter()) == 7
