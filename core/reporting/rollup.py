"""The dashboard's daily roll-up of requests (`request_daily_counts`), kept exact by the database.

A year's dashboard over a million requests grouped the raw rows at every call (1.65 s, issue 13);
the roll-up holds one row per (account, local day, integration, channel, campaign, source,
attribution, new or repeat) with its count, so the same answer is a few thousand rows away.

Exactness is the database's job, not every caller's: triggers on `requests` add on INSERT, subtract
on DELETE and move the count on an UPDATE that changes a key column (a repeat recompute flipping `is_repeat` too) — in the same transaction as
the change. That covers `core.inbox.talk_processing`'s insert, whatever inserts requests later, the
cascades (an integration or account deleted; a campaign or source deleted sets the requests' id to
NULL, which is an UPDATE) and bulk loads such as `bench.reports`'. PostgreSQL uses statement-level
triggers with transition tables (one grouped upsert per statement, keys in a fixed order so two
transactions never lock the same rows in opposite orders); SQLite has row-level triggers only.

Days are local to ROLLUP_ZONE, the zone the admin shows (core.reporting.report.DEFAULT_TZ). A dashboard in
another zone cannot be summed from these days and groups the raw rows, as before (core.reporting.dashboard).
On SQLite the local day is the `cs_local_day` function that core.platform.db registers on every connection.

`rebuild` recomputes the roll-up from the raw rows (migration 0010's backfill; a repair), and
`differences` lists where the roll-up and a COUNT over the raw rows disagree (the tests; a check).
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.reporting.report import DEFAULT_TZ

ROLLUP_ZONE = DEFAULT_TZ
TABLE = "request_daily_counts"
KEY = ("account_id", "day", "integration_id", "channel", "campaign_id", "source_id", "attribution", "is_repeat")
# The key before migration 0015 split new and repeat requests (what migration 0014 installs).
KEY_0014 = KEY[:-1]
_ZONE_SQL = "'" + ROLLUP_ZONE + "'"


def source_columns(key: tuple[str, ...] = KEY) -> tuple[str, ...]:
    """The `requests` columns that decide a request's row of the roll-up; an UPDATE of anything else
    leaves it alone. `is_repeat` is one: core.inbox.repeat_requests' recomputes move counts between the two."""
    return tuple("created_at" if k == "day" else k for k in key)


SOURCE_COLUMNS = source_columns()


def _key_values(alias: str, dialect: str, key: tuple[str, ...] = KEY) -> list[str]:
    """The roll-up key of a row of `alias`, as SQL expressions in `key`'s order."""
    day = (f"cast({alias}.created_at at time zone {_ZONE_SQL} as date)" if dialect == "postgresql"
           else f"cs_local_day({alias}.created_at, {_ZONE_SQL})")
    special = {"day": day, "campaign_id": f"coalesce({alias}.campaign_id, 0)", "source_id": f"coalesce({alias}.source_id, 0)"}
    return [special.get(k, f"{alias}.{k}") for k in key]


def _key_select(alias: str, dialect: str, key: tuple[str, ...] = KEY) -> str:
    return ", ".join(_key_values(alias, dialect, key))


def _positions(key: tuple[str, ...]) -> str:
    return ", ".join(str(i) for i in range(1, len(key) + 1))


# --- PostgreSQL: statement-level triggers over transition tables --------------------------------

def _pg_grouped(rows: str, key: tuple[str, ...]) -> str:
    return (f"select {_key_select('x', 'postgresql', key)}, count(*) from {rows} x group by {_positions(key)} "
            f"order by {_positions(key)}")


def _pg_add(rows: str, key: tuple[str, ...]) -> str:
    columns = ", ".join(key)
    return (f"insert into {TABLE} as r ({columns}, n) {_pg_grouped(rows, key)} "
            f"on conflict ({columns}) do update set n = r.n + excluded.n;")


def _pg_subtract(rows: str, key: tuple[str, ...]) -> str:
    columns, match = ", ".join(key), " and ".join(f"r.{k} = d.{k}" for k in key)
    grouped = _pg_grouped(rows, key)
    return (f"update {TABLE} r set n = r.n - d.n from ({grouped}) as d({columns}, n) where {match};"
            f"delete from {TABLE} r using ({grouped}) as d({columns}, n) where {match} and r.n <= 0;")


def _pg_functions(key: tuple[str, ...]) -> dict[str, str]:
    changed = "(" + " or ".join(f"o.{c} is distinct from n.{c}" for c in source_columns(key)) + ")"
    moved = f"(select {{}}.* from old_rows o join new_rows n on n.id = o.id where {changed})"
    return {
        "request_rollup_insert": _pg_add("new_rows", key),
        "request_rollup_delete": _pg_subtract("old_rows", key),
        # Only the rows whose key moved: an UPDATE of anything else costs one join of the two tables.
        "request_rollup_update": _pg_subtract(moved.format("o"), key) + _pg_add(moved.format("n"), key),
    }


_PG_TRIGGERS = {
    "request_rollup_insert": "after insert on requests referencing new table as new_rows",
    "request_rollup_delete": "after delete on requests referencing old table as old_rows",
    "request_rollup_update": "after update on requests referencing old table as old_rows new table as new_rows",
}


def _pg_install(connection: Connection, key: tuple[str, ...]) -> None:
    for name, body in _pg_functions(key).items():
        connection.exec_driver_sql(
            f"create or replace function {name}() returns trigger language plpgsql as $$ begin {body} return null; end $$")
        connection.exec_driver_sql(f"drop trigger if exists {name} on requests")
        connection.exec_driver_sql(f"create trigger {name} {_PG_TRIGGERS[name]} for each statement execute function {name}()")


# --- SQLite: row-level triggers ------------------------------------------------------------------

def _sqlite_add(alias: str, key: tuple[str, ...]) -> str:
    columns = ", ".join(key)
    return (f"insert into {TABLE} ({columns}, n) select {_key_select(alias, 'sqlite', key)}, 1 where true "
            f"on conflict ({columns}) do update set n = n + 1;")


def _sqlite_subtract(alias: str, key: tuple[str, ...]) -> str:
    match = " and ".join(f"{k} = {v}" for k, v in zip(key, _key_values(alias, "sqlite", key)))
    return f"update {TABLE} set n = n - 1 where {match}; delete from {TABLE} where {match} and n <= 0;"


def _sqlite_triggers(key: tuple[str, ...]) -> dict[str, str]:
    columns = source_columns(key)
    changed = " or ".join(f"old.{c} is not new.{c}" for c in columns)
    return {
        "request_rollup_insert": f"after insert on requests begin {_sqlite_add('new', key)} end",
        "request_rollup_delete": f"after delete on requests begin {_sqlite_subtract('old', key)} end",
        "request_rollup_update": (f"after update of {', '.join(columns)} on requests when {changed} "
                                  f"begin {_sqlite_subtract('old', key)} {_sqlite_add('new', key)} end"),
    }


def _sqlite_install(connection: Connection, key: tuple[str, ...]) -> None:
    for name, body in _sqlite_triggers(key).items():
        connection.exec_driver_sql(f"drop trigger if exists {name}")
        connection.exec_driver_sql(f"create trigger {name} {body}")


# --- what the migration, the tests and a repair call ---------------------------------------------

TRIGGER_NAMES = tuple(_PG_TRIGGERS)


def install(connection: Connection, key: tuple[str, ...] = KEY) -> None:
    """Create (or replace) the triggers. A migration that recreates `requests` on SQLite (alembic's
    batch mode copies the table) drops them: it must call this again (tests/core/test_request_rollup.py
    checks they exist at the head). `key`: the roll-up's columns at the caller's revision (a migration
    before the newest passes its own, e.g. KEY_0014)."""
    {"postgresql": _pg_install, "sqlite": _sqlite_install}[connection.dialect.name](connection, tuple(key))


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


def rebuild(connection: Connection, account_id: int | None = None, key: tuple[str, ...] = KEY) -> None:
    """Recompute the roll-up (of one account, or all) from the raw rows, in the caller's transaction."""
    where, params = ("where x.account_id = :account", {"account": account_id}) if account_id is not None else ("", {})
    connection.execute(sa.text(f"delete from {TABLE}" + (" where account_id = :account" if where else "")), params)
    connection.execute(sa.text(
        f"insert into {TABLE} ({', '.join(key)}, n) select {_key_select('x', connection.dialect.name, key)}, count(*) "
        f"from requests x {where} group by {_positions(key)}"), params)


def differences(connection: Connection, account_id: int | None = None) -> dict[tuple, tuple[int, int]]:
    """{key: (roll-up count, raw count)} wherever they differ; empty when the roll-up is exact."""
    where, params = ("where x.account_id = :account", {"account": account_id}) if account_id is not None else ("", {})
    raw = {tuple(str(v) for v in row[:-1]): row[-1] for row in connection.execute(sa.text(
        f"select {_key_select('x', connection.dialect.name)}, count(*) from requests x {where} group by {_positions(KEY)}"),
        params)}
    rolled = {tuple(str(v) for v in row[:-1]): row[-1] for row in connection.execute(sa.text(
        f"select {', '.join(KEY)}, n from {TABLE} x {where}"), params)}
    return {k: (rolled.get(k, 0), raw.get(k, 0)) for k in raw.keys() | rolled.keys() if rolled.get(k, 0) != raw.get(k, 0)}
