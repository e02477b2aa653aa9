"""Repeat requests («повторное обращение»): who the contact is, the series by chat creation time, the
window, recording in any order or concurrently, and the background recompute after a window change."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.inbox import repeat_requests as rr
from core.models import Account, ChatRequest, RepeatRecomputeRun
from core.platform.errors import ValidationFailed
from core.reporting.csv_export import iter_requests_csv
from core.reporting.report import RequestFilter, page_requests
from tests.helpers.report_data import add_request, seed_catalog
from web.messages import translations_for

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def test_the_contact_is_the_amocrm_contact_else_the_phone_else_the_email():
    assert rr.contact_key(3, 77, "+79151234567", "a@b.ru") == "amo:3:77"
    assert rr.contact_key(3, None, "+79151234567", "a@b.ru") == "tel:+79151234567"
    # A phone we could not read as E.164 does not identify anyone; the e-mail does, case-folded.
    assert rr.contact_key(3, None, "8 915", " Ivan@Example.RU ") == "email:ivan@example.ru"
    assert rr.contact_key(3, None, None, "") is None


def test_a_request_is_repeat_when_the_previous_one_is_within_the_window_and_points_at_the_series_first():
    rows = [(1, T0), (2, T0 + 10 * DAY), (3, T0 + 40 * DAY), (4, T0 + 71 * DAY), (5, T0 + 101 * DAY + timedelta(seconds=1))]
    flags = rr.series_flags(rows, 30 * DAY)
    # 3 is 30 days after 2 (inclusive) → still the series of 1; 4 is 31 days after 3 → new; 5 is past 30 days → new.
    assert flags == {1: (False, None), 2: (True, 1), 3: (True, 1), 4: (False, None), 5: (False, None)}
    # Order of arrival does not matter, and a tie in time goes to the lower id.
    assert rr.series_flags(list(reversed(rows)), 30 * DAY) == flags
    assert rr.series_flags([(9, T0), (8, T0)], DAY) == {8: (False, None), 9: (True, 8)}


@pytest.mark.parametrize("raw", ["0", "366", "abc", "", None, "7.5", True, "-3"])
def test_the_window_must_be_one_to_365_days(raw):
    with pytest.raises(ValidationFailed) as exc:
        rr.parse_window(raw)
    assert exc.value.field == "repeat_window_days"


def test_parse_window_accepts_whole_days():
    assert rr.parse_window(" 7 ") == 7 and rr.parse_window(365) == 365


@pytest.fixture
def cat(services, account_id):
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        session.commit()
        return cat


def record(services, account_id, integration_id, created_at, **values) -> int:
    """What record_request does for the repeat flags: insert, then mark, in one transaction."""
    values.setdefault("amo_contact_id", None)
    with services.session_factory() as session:
        row = add_request(session, account_id, integration_id, created_at, **values)
        rr.mark_request(session, row.id)
        session.commit()
        return row.id


def flags_of(services, *ids):
    with services.session_factory() as session:
        rows = session.execute(sa.select(ChatRequest.id, ChatRequest.is_repeat, ChatRequest.first_request_id)
                               .where(ChatRequest.id.in_(ids))).all()
    by_id = {r.id: (bool(r.is_repeat), r.first_request_id) for r in rows}
    return [by_id[i] for i in ids]


def test_a_talk_found_late_becomes_the_first_and_the_others_follow_it(services, account_id, cat):
    i = cat.integration_id
    later = record(services, account_id, i, T0 + 5 * DAY, phone="+79151234567")
    assert flags_of(services, later) == [(False, None)]
    # Reconciliation finds an older chat of the same phone: it opens the series now.
    older = record(services, account_id, i, T0, phone="+79151234567")
    assert flags_of(services, older, later) == [(False, None), (True, older)]
    other = record(services, account_id, i, T0 + 6 * DAY, phone="+79260000000")
    assert flags_of(services, other) == [(False, None)]


def test_a_new_chat_reads_the_series_from_the_chat_before_it_and_points_at_the_series_first(services, account_id, cat):
    """The worker reads a contact's series from the last request before the new one (not the whole
    history): the third chat of a series still points at the first, not at the second."""
    i = cat.integration_id
    first = record(services, account_id, i, T0, phone="+79151112233")
    second = record(services, account_id, i, T0 + 10 * DAY, phone="+79151112233")
    third = record(services, account_id, i, T0 + 20 * DAY, phone="+79151112233")
    fresh = record(services, account_id, i, T0 + 60 * DAY, phone="+79151112233")
    assert flags_of(services, first, second, third, fresh) == [(False, None), (True, first), (True, first), (False, None)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chats=st.lists(st.tuples(st.sampled_from(["+79150000001", "+79150000002"]), st.integers(0, 120)),
                      min_size=1, max_size=12),
       batches=st.lists(st.integers(1, 4), min_size=12, max_size=12), window_days=st.sampled_from([1, 7, 30]))
def test_recording_in_any_order_and_batches_gives_the_flags_of_the_whole_series(services, account_id, cat, chats,
                                                                                batches, window_days):
    """Chats of two phones on random days, recorded in the given order in batches of random sizes
    (reconciliation finds old ones late; a batch marks several at once): every request ends with the
    flags `series_flags` gives its contact's whole series."""
    with services.session_factory() as session:
        session.execute(sa.delete(ChatRequest).where(ChatRequest.account_id == account_id))
        session.execute(sa.update(Account).where(Account.id == account_id).values(repeat_window_days=window_days))
        session.commit()
    pending = list(chats)
    sizes = iter(batches)
    while pending:
        size = next(sizes)
        batch, pending = pending[:size], pending[size:]
        with services.session_factory() as session:
            rows = [add_request(session, account_id, cat.integration_id, T0 + day * DAY + timedelta(minutes=day),
                                phone=phone, amo_contact_id=None, contact_key=f"tel:{phone}") for phone, day in batch]
            # As the worker does: the keys of the rows it has just inserted come along.
            rr.mark_requests(session, [r.id for r in rows], {r.id: (account_id, r.contact_key, r.created_at) for r in rows})
            session.commit()
    with services.session_factory() as session:
        rows = session.execute(sa.select(ChatRequest.id, ChatRequest.phone, ChatRequest.created_at, ChatRequest.is_repeat,
                                         ChatRequest.first_request_id).where(ChatRequest.account_id == account_id)).all()
    for phone in {r.phone for r in rows}:
        members = [r for r in rows if r.phone == phone]
        wanted = rr.series_flags([(r.id, r.created_at) for r in members], timedelta(days=window_days))
        assert {r.id: (bool(r.is_repeat), r.first_request_id) for r in members} == wanted


def test_the_same_amocrm_contact_id_of_another_integration_or_account_is_another_contact(services, account_id, cat):
    from core.access.accounts import create_account
    from core.integrations import settings as integrations

    with services.session_factory() as session:
        second = integrations.create_integration(session, services, account_id, {"name": "Второй amoCRM"}).id
        stranger = create_account(session, "Чужой")
        stranger_cat = seed_catalog(session, services, stranger.id)
        session.commit()
    first = record(services, account_id, cat.integration_id, T0, amo_contact_id=555)
    other_integration = record(services, account_id, second, T0 + DAY, amo_contact_id=555)
    other_account = record(services, stranger.id, stranger_cat.integration_id, T0 + DAY, phone="+79151234567")
    mine = record(services, account_id, cat.integration_id, T0 + 2 * DAY, phone="+79151234567")
    assert flags_of(services, first, other_integration, other_account, mine) == [(False, None)] * 4
    again = record(services, account_id, cat.integration_id, T0 + 3 * DAY, amo_contact_id=555)
    assert flags_of(services, again) == [(True, first)]


def test_changing_the_window_recomputes_in_the_background_idempotently(services, account_id, cat):
    i = cat.integration_id
    a = record(services, account_id, i, T0, email="ivan@example.ru")
    b = record(services, account_id, i, T0 + 10 * DAY, email="IVAN@example.ru")
    c = record(services, account_id, i, T0 + 15 * DAY, email="ivan@example.ru")
    assert flags_of(services, a, b, c) == [(False, None), (True, a), (True, a)]
    with services.session_factory() as session:
        assert rr.change_window(session, account_id, 30) is None  # unchanged: nothing to do
        run = rr.change_window(session, account_id, 7, requested_by="test")
        session.commit()
    # Until the worker runs, the flags are the old ones and the run says it is queued.
    assert flags_of(services, a, b, c) == [(False, None), (True, a), (True, a)]
    outcome = rr.run_recompute(services.session_factory, run.id, chunk=1)
    assert (outcome.result, outcome.changed) == ("done", 2)
    assert flags_of(services, a, b, c) == [(False, None), (False, None), (True, b)]
    with services.session_factory() as session:
        data = rr.run_to_dict(session.get(RepeatRecomputeRun, run.id))
    assert (data["status"], data["contacts_done"], data["contacts_total"], data["percent"]) == ("done", 1, 1, 100)
    # Delivered twice: the second message finds the run finished and does nothing.
    assert rr.run_recompute(services.session_factory, run.id).result == "nothing"


def test_a_newer_window_supersedes_a_run_not_yet_finished(services, account_id, cat):
    record(services, account_id, cat.integration_id, T0, phone="+79151234567")
    with services.session_factory() as session:
        first = rr.change_window(session, account_id, 7)
        session.commit()
    with services.session_factory() as session:
        second = rr.change_window(session, account_id, 60)
        session.commit()
    assert rr.run_recompute(services.session_factory, first.id).result == "superseded"
    assert rr.run_recompute(services.session_factory, second.id).result == "done"
    with services.session_factory() as session:
        assert session.get(Account, account_id).repeat_window_days == 60
        assert rr.latest_run(session, account_id).id == second.id


def test_a_retried_run_goes_on_from_the_last_contact_finished(services, account_id, cat):
    for n in range(3):
        record(services, account_id, cat.integration_id, T0 + n * DAY, phone=f"+7915000000{n}")
    with services.session_factory() as session:
        run = rr.change_window(session, account_id, 7)
        run.status, run.cursor_key, run.contacts_done = "running", "tel:+79150000001", 2  # a worker died here
        session.commit()
    assert rr.run_recompute(services.session_factory, run.id).result == "done"
    with services.session_factory() as session:
        assert session.get(RepeatRecomputeRun, run.id).contacts_done == 3


def test_the_report_filters_new_and_repeat_and_the_csv_carries_both_columns(services, account_id, cat):
    i = cat.integration_id
    a = record(services, account_id, i, T0, phone="+79151234567")
    b = record(services, account_id, i, T0 + DAY, phone="+79151234567")
    with services.session_factory() as session:
        repeat = page_requests(session, account_id, RequestFilter.from_params({"is_repeat": "true"})).rows
        new = page_requests(session, account_id, RequestFilter.from_params({"is_repeat": "false"})).rows
        assert [r.id for r in repeat] == [b] and [r.id for r in new] == [a]
        csv_text = "".join(iter_requests_csv(session, account_id, sort="created_at", translations=translations_for("en")))
    header, first_row, second_row = csv_text.lstrip("\ufeff").strip().split("\r\n")
    assert header.endswith(",Repeat request,First request ID")
    assert first_row.endswith(",no,") and second_row.endswith(f",yes,{a}")
    with pytest.raises(ValidationFailed):
        RequestFilter.from_params({"is_repeat": "maybe"})


def test_two_chats_of_one_contact_in_concurrent_batches_give_exactly_one_first(services, account_id, cat, db_url):
    """Two workers insert a request of the same phone at once (neither committed) and then mark it.
    Each alone sees only its own row; the account lock makes the second wait for the first's commit.
    (The two chats come by different channels: two requests of one roll-up bucket already wait for each
    other at the INSERT — core.reporting.rollup's row lock — so they could not both be uncommitted.)"""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: the second insert already waits for the first commit")
    inserted = threading.Barrier(2, timeout=20)
    marked = [threading.Event(), threading.Event()]
    errors = []

    def worker(n: int):
        try:
            with services.session_factory() as session:
                channel = ("telegram", "whatsapp")[n]
                row = add_request(session, account_id, cat.integration_id, T0 + n * timedelta(minutes=1),
                                  phone="+79151234567", amo_contact_id=None, origin=channel, channel=channel)
                inserted.wait()
                rr.mark_request(session, row.id)
                marked[n].set()
                # Without the lock the other worker marks now, seeing only its own row too.
                marked[1 - n].wait(timeout=1.5)
                session.commit()
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    with services.session_factory() as session:
        rows = session.execute(sa.select(ChatRequest.id, ChatRequest.is_repeat, ChatRequest.first_request_id)
                               .order_by(ChatRequest.created_at)).all()
    assert [(bool(r.is_repeat), r.first_request_id) for r in rows] == [(False, None), (True, rows[0].id)]


def test_the_dashboard_counts_new_and_repeat_requests_of_the_period(services, account_id, cat):
    from core.reporting.dashboard import build_dashboard

    now = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
    record(services, account_id, cat.integration_id, now - 40 * DAY, phone="+79151234567")  # before the period
    record(services, account_id, cat.integration_id, now - 2 * DAY, phone="+79151234567")   # 38 days later: new
    record(services, account_id, cat.integration_id, now - DAY, phone="+79151234567")       # repeat
    record(services, account_id, cat.integration_id, now - DAY, phone="+79260000000")       # new
    with services.session_factory() as session:
        data = build_dashboard(session, account_id, "2026-11-14", "2026-11-20", today=now.date())
    assert data["repeat"] == {"new": 2, "repeat": 1, "repeat_share": 0.3333, "window_days": 30}
