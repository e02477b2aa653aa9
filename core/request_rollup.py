"""The dashboard's daily roll-up of requests (`request_daily_counts`), kept exact by the database.

A year's dashboard over a million requests grouped the raw rows at every call (1.65 s, issue 13);
the roll-up holds one row per (account, local day, integration, channel, campaign, source,
attribution) with its count, so the same answer is a few thousand rows away.

Exactness is the database's job, not every caller's: triggers on `requests` add on INSERT, subtract
on DELETE and move the count on an UPDATE that changes a key column — in the same transaction as
the change. That covers `core.talk_processing`'s insert, whatever inserts requests later, the
cascades (an integration or account deleted; a campaign or source deleted sets the requests' id to
NULL, which is an UPDATE) and bulk loads such as `bench.reports`'. PostgreSQL uses statement-level
triggers with transition tables (one grouped upsert per statement, keys in a fixed order so two
transactions never lock the same rows in opposite orders); SQLite has row-level triggers only.

Days are local to ROLLUP_ZONE, the zone the admin shows (core.reports.DEFAULT_TZ). A dashboard in
another zone cannot be summed from these days and groups the raw rows, as before (core.dashboard).
On SQLite the local day is the `cs_local_day` function that core.db registers on every connection.

`rebuild` recomputes the roll-up from the raw rows (migration 0010's backfill; a repair), and
`differences` lists where the roll-up and a COUNT over the raw rows disagree (the tests; a check).
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.reports import DEFAULT_TZ

ROLLUP_ZONE = DEFAULT_TZ
TABLE = "request_daily_counts"
KEY = ("account_id", "day", "integration_id", "channel", "campaign_id", "source_id", "attribution")
# What decides a request's row in the roll-up; an UPDATE of anything else leaves the roll-up alone.
SOURCE_COLUMNS = ("account_id", "integration_id", "created_at", "channel", "campaign_id", "source_id", "attribution")
_ZONE_SQL = "'" + ROLLUP_ZONE + "'"


def _key_values(alias: str, dialect: str) -> list[str]:
    """The roll-up key of a row of `alias`, as SQL expressions in KEY's order."""
    day = (f"cast({alias}.created_at at time zone {_ZONE_SQL} as date)" if dialect == "postgresql"
           else f"cs_local_day({alias}.created_at, {_ZONE_SQL})")
    return [f"{alias}.account_id", day, f"{alias}.integration_id", f"{alias}.channel",
            f"coalesce({alias}.campaign_id, 0)", f"coalesce({alias}.source_id, 0)", f"{alias}.attribution"]


def _key_select(alias: str, dialect: str) -> str:
    return ", ".join(_key_values(alias, dialect))


_COLUMNS = ("account_id", "integration_id", "created_at", "channel", "campaign_id", "source_id", "attribution")
_ZONE_SQL = "'" + ROLLUP_ZONE + "'"


def _key_select(alias: str, dialect: str) -> str:
    """The roll-up key of the rows of `alias`, as a SELECT list in KEY's order."""
    day = (f"cast({alias}.created_at at time zone {_ZONE_SQL} as date)" if dialect == "postgresql"
           else f"cs_local_day({alias}.created_at, {_ZONE_SQL})")
    return (f"{alias}.account_id, {day}, {alias}.integration_id, {alias}.channel, "
            f"coalesce({alias}.campaign_id, 0), coalesce({alias}.source_id, 0), {alias}.attribution")


_COLUMNS = ", ".join(KEY)
_MATCH = " and ".join(f"r.{k} = d.{k}" for k in KEY)


# --- PostgreSQL: statement-level triggers over transition tables --------------------------------

def _pg_add(rows: str) -> str:
    return (f"insert into {TABLE} as r ({_COLUMNS}, n) "
            f"select {_key_select('x', 'postgresql')}, count(*) from {rows} x group by 1, 2, 3, 4, 5, 6, 7 "
            f"order by 1, 2, 3, 4, 5, 6, 7 "
            f"on conflict ({_COLUMNS}) do update set n = r.n + excluded.n;")


def _pg_subtract(rows: str) -> str:
    grouped = (f"select {_key_select('x', 'postgresql')}, count(*) from {rows} x group by 1, 2, 3, 4, 5, 6, 7 "
               f"order by 1, 2, 3, 4, 5, 6, 7")
    return (f"update {TABLE} r set n = r.n - d.n from ({grouped}) as d({_COLUMNS}, n) where {_MATCH};"
            f"delete from {TABLE} r using ({grouped}) as d({_COLUMNS}, n) where {_MATCH} and r.n <= 0;")


_PG_CHANGED = "(" + " or ".join(f"o.{c} is distinct from n.{c}" for c in SOURCE_COLUMNS) + ")"
_PG_FUNCTIONS = {
    "request_rollup_insert": _pg_add("new_rows"),
    "request_rollup_delete": _pg_subtract("old_rows"),
    # Only the rows whose key moved: an UPDATE of anything else costs one join of the two tables.
    "request_rollup_update": (
        _pg_subtract(f"(select o.* from old_rows o join new_rows n on n.id = o.id where {_PG_CHANGED})")
        + _pg_add(f"(select n.* from old_rows o join new_rows n on n.id = o.id where {_PG_CHANGED})")
    ),
}
_PG_TRIGGERS = {
    "request_rollup_insert": "after insert on requests referencing new table as new_rows",
    "request_rollup_delete": "after delete on requests referencing old table as old_rows",
    "request_rollup_update": "after update on requests referencing old table as old_rows new table as new_rows",
}


def _pg_install(connection: Connection) -> None:
    for name, body in _PG_FUNCTIONS.items():
        connection.exec_driver_sql(
            f"create or replace function {name}() returns trigger language plpgsql as $$ begin {body} return null; end $$")
        connection.exec_driver_sql(f"drop trigger if exists {name} on requests")
        connection.exec_driver_sql(f"create trigger {name} {_PG_TRIGGERS[name]} for each statement execute function {name}()")


# --- SQLite: row-level triggers ------------------------------------------------------------------

def _sqlite_add(alias: str) -> str:
    return (f"insert into {TABLE} ({_COLUMNS}, n) select {_key_select(alias, 'sqlite')}, 1 where true "
            f"on conflict ({_COLUMNS}) do update set n = n + 1;")


def _sqlite_subtract(alias: str) -> str:
    values = _key_values(alias, "sqlite")
    match = " and ".join(f"{k} = {v}" for k, v in zip(KEY, values))
    return f"update {TABLE} set n = n - 1 where {match}; delete from {TABLE} where {match} and n <= 0;"


_SQLITE_CHANGED = " or ".join(f"old.{c} is not new.{c}" for c in SOURCE_COLUMNS)
_SQLITE_TRIGGERS = {
    "request_rollup_insert": f"after insert on requests begin {_sqlite_add('new')} end",
    "request_rollup_delete": f"after delete on requests begin {_sqlite_subtract('old')} end",
    "request_rollup_update": (f"after update of {', '.join(SOURCE_COLUMNS)} on requests when {_SQLITE_CHANGED} "
                              f"begin {_sqlite_subtract('old')} {_sqlite_add('new')} end"),
}


def _sqlite_install(connection: Connection) -> None:
    for name, body in _SQLITE_TRIGGERS.items():
        connection.exec_driver_sql(f"drop trigger if exists {name}")
        connection.exec_driver_sql(f"create trigger {name} {body}")


# --- what the migration, the tests and a repair call ---------------------------------------------

TRIGGER_NAMES = tuple(_PG_TRIGGERS)


def install(connection: Connection) -> None:
    """Create (or replace) the triggers. A migration that recreates `requests` on SQLite (alembic's
    batch mode copies the table) drops them: it must call this again (tests/unit/test_request_rollup.py
    checks they exist at the head)."""
    {"postgresql": _pg_install, "sqlite": _sqlite_install}[connection.dialect.name](connection)


def uninstall(connection: Connection) -> None:
    for name in TRIGGER_NAMES:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"drop trigger if exists {name} on requests")
            connection.exec_driver_sql(f"drop function if exists {name}()")
        else:
            connection.exec_driver_sql(f"drop trigger if exists {name}")


def installed_triggers(connection: Connection) -> set[str]:
    if connection.dialect.name == "postgresql":
        sql = "select tgname from pg_trigger where tgrelid = 'requests'::regclass and not tgisinternal"
    else:
        sql = "select name from sqlite_master where type = 'trigger' and tbl_name = 'requests'"
    return {name for (name,) in connection.exec_driver_sql(sql)}


def rebuild(connection: Connection, account_id: int | None = None) -> None:
    """Recompute the roll-up (of one account, or all) from the raw rows, in the caller's transaction."""
    where, params = ("where x.account_id = :account", {"account": account_id}) if account_id is not None else ("", {})
    connection.execute(sa.text(f"delete from {TABLE}" + (" where account_id = :account" if where else "")), params)
    connection.execute(sa.text(
        f"insert into {TABLE} ({_COLUMNS}, n) select {_key_select('x', connection.dialect.name)}, count(*) "
        f"from requests x {where} group by 1, 2, 3, 4, 5, 6, 7"), params)


def differences(connection: Connection, account_id: int | None = None) -> dict[tuple, tuple[int, int]]:
    """{key: (roll-up count, raw count)} wherever they differ; empty when the roll-up is exact."""
    where, params = ("where x.account_id = :account", {"account": account_id}) if account_id is not None else ("", {})
    raw = {tuple(str(v) for v in row[:-1]): row[-1] for row in connection.execute(sa.text(
        f"select {_key_select('x', connection.dialect.name)}, count(*) from requests x {where} group by 1, 2, 3, 4, 5, 6, 7"), params)}
    rolled = {tuple(str(v) for v in row[:-1]): row[-1] for row in connection.execute(sa.text(
        f"select {_COLUMNS}, n from {TABLE} x {where}"), params)}
    return {k: (rolled.get(k, 0), raw.get(k, 0)) for k in raw.keys() | rolled.keys() if rolled.get(k, 0) != raw.get(k, 0)}
