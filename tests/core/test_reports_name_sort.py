"""Sorting the Raw data by a joined name (campaign, source, site, integration) walks the names one by
one (core.reporting.report._by_name_groups) instead of sorting every row: the order must be exactly the plain
`ORDER BY coalesce(name, ''), id` of the join, page by page, with offsets and cursors."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from core.models import ChatRequest
from core.reporting import report as reports
from core.reporting.report import RequestFilter, Sort, page_requests
from core.tracking.catalog import create_campaign, create_source
from tests.helpers.report_data import add_requests_bulk, request_values, seed_catalog

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)  # as in tests/core/test_reports.py


SORTS = ["campaign", "-campaign", "source", "-source", "site", "-site", "integration", "-integration"]


def _seed(session, services, account_id):
    cat = seed_catalog(session, services, account_id)
    # Two campaigns with one name (their requests interleave by id), one named like the «» group would sort.
    campaigns = [cat.campaign_id, cat.other_campaign_id,
                 create_campaign(session, account_id, "Яндекс Директ", cat.site_id).id,
                 create_campaign(session, account_id, "Ä-кампания", cat.site_id).id, None]
    sources = [cat.source_id, create_source(session, account_id, "a").id, create_source(session, account_id, "B").id, None]
    sites = [cat.site_id, cat.other_site_id, None]
    rnd = random.Random(13)
    add_requests_bulk(session, [request_values(
        account_id, cat.integration_id, T0 + timedelta(minutes=n), campaign_id=rnd.choice(campaigns),
        source_id=rnd.choice(sources), site_id=rnd.choice(sites), channel=rnd.choice(["telegram", "vk"]))
        for n in range(90)])
    session.commit()
    return cat


def _plain_order(session, account_id, sort: Sort, flt=None) -> list[int]:
    flt = flt or RequestFilter()
    stmt = sort.apply(sa.select(ChatRequest.id).where(*flt.conditions(account_id)))
    return list(session.scalars(stmt))


@pytest.mark.parametrize("sort", SORTS)
def test_pages_by_name_equal_the_sorted_join(services, account_id, sort):
    with services.session_factory() as session:
        _seed(session, services, account_id)
        sort = Sort.parse(sort)
        expected = _plain_order(session, account_id, sort)
        assert len(expected) == 90
        walked, cursor = [], None
        while True:
            page = page_requests(session, account_id, None, sort, limit=7, cursor=cursor)
            walked += [r.id for r in page.rows]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert walked == expected
        for offset in (0, 13, 85):
            assert [r.id for r in page_requests(session, account_id, None, sort, limit=10, offset=offset).rows] \
                == expected[offset:offset + 10]
        telegram = RequestFilter(channel="telegram")
        assert [r.id for r in page_requests(session, account_id, telegram, sort, limit=500).rows] \
            == _plain_order(session, account_id, sort, telegram)


def test_many_names_or_a_renamed_cursor_fall_back_to_the_join(services, account_id, monkeypatch):
    with services.session_factory() as session:
        _seed(session, services, account_id)
        sort = Sort.parse("campaign")
        first = page_requests(session, account_id, None, sort, limit=30)
        session.execute(sa.text("update campaigns set name = name || ' (старая)'"))  # the cursor's name is gone
        after = reports.decode_cursor(first.next_cursor, sort)
        plain = sort.apply(sa.select(ChatRequest.id).where(ChatRequest.account_id == account_id, sort.after(*after)))
        rest = page_requests(session, account_id, None, sort, limit=500, cursor=first.next_cursor)
        assert [r.id for r in rest.rows] == list(session.scalars(plain)) and rest.rows
        monkeypatch.setattr(reports, "MAX_NAME_GROUPS", 2)
        assert [r.id for r in page_requests(session, account_id, None, sort, limit=500).rows] \
            == _plain_order(session, account_id, sort)
