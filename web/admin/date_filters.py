"""Date filters of the admin lists (issue 15 item 11): days of the account's time zone, typed as the
page's language writes dates.

Flask-Admin's date filters compare the column with a naive date in UTC and take only ISO
(`2026-11-24`, ranges `2026-11-24 to 2026-11-30`). Ours read the day in the account's zone (the zone
every time on the page is shown in) and accept what the picker writes in either language — ru
`24.11.2026 — 30.11.2026`, en `2026-11-24 to 2026-11-30` (`web/static/admin/filter_dates.js` sets
the picker's format, month and day names from the page's language). A value that is no date is
not applied (Flask-Admin's rule for a filter that does not validate).
"""
from __future__ import annotations

import re
from datetime import date, datetime

from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import lazy_gettext as _l

from core.reporting.report import get_zone, local_day_bounds

_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})\.(\d{1,2})\.(\d{4})")


def parse_dates(text) -> list[date]:
    """Every date in `text` (ISO or dd.mm.yyyy), in order; a token that is no calendar day raises ValueError."""
    found = []
    for m in _DATE.finditer(str(text or "")):
        y, mo, d = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(6), m.group(5), m.group(4))
        found.append(date(int(y), int(mo), int(d)))
    rest = _DATE.sub("", str(text or ""))
    if re.search(r"\d", rest):  # digits outside the dates: not something the picker wrote
        raise ValueError("not a date")
    return found


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the local days first … last in the account's zone."""
    from web.admin.dashboard_views import zone_name

    return local_day_bounds(first, last, get_zone(zone_name()))


class _LocalDayFilter(BaseSQLAFilter):
    def __init__(self, column, name, options=None, data_type="datepicker"):
        super().__init__(column, name, options, data_type=data_type)

    def validate(self, value) -> bool:
        try:
            return len(parse_dates(value)) == 1
        except ValueError:
            return False

    def clean(self, value):
        return parse_dates(value)[0]


class DayFromFilter(_LocalDayFilter):
    """On that local day or later."""

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) >= _bounds(value, value)[0])

    def operation(self):
        return _l("from")


class DayUntilFilter(_LocalDayFilter):
    """On that local day or earlier."""

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) < _bounds(value, value)[1])

    def operation(self):
        return _l("until")


class DaysBetweenFilter(_LocalDayFilter):
    """From the first local day to the second, both whole."""

    def __init__(self, column, name, options=None, data_type="daterangepicker"):
        super().__init__(column, name, options, data_type=data_type)

    def validate(self, value) -> bool:
        try:
            days = parse_dates(value)
        except ValueError:
            return False
        return len(days) == 2 and days[0] <= days[1]

    def clean(self, value):
        return tuple(parse_dates(value))

    def apply(self, query, value, alias=None):
        start, end = _bounds(*value)
        column = self.get_column(alias)
        return query.filter(column >= start, column < end)

    def operation(self):
        return _l("between")


def day_filters(column, name) -> list:
    """The three date filters of a moment column, under one name in the «Add filter» menu."""
    return [DaysBetweenFilter(column, name), DayFromFilter(column, name), DayUntilFilter(column, name)]
