"""Database plumbing shared by web, workers and tests: the declarative base, column types,
engine creation (SQLite pragmas, PostgreSQL pool) and dialect-neutral "insert or ignore"."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# JSON that is JSONB on PostgreSQL.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# 64-bit ids on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


@lru_cache(maxsize=64)
def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def sqlite_local_day(value, zone_name):
    """`cs_local_day(created_at, zone)` on SQLite: the local calendar day of a stored UTC moment
    (the dashboard groups by it; the roll-up's triggers key by it, core.reporting.rollup)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(_zone(zone_name)).date().isoformat()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):  # pragma: no cover - trivial
    if isinstance(dbapi_connection, sqlite3.Connection):
        # On every connection: the roll-up's triggers call it on each INSERT into requests.
        dbapi_connection.create_function("cs_local_day", 2, sqlite_local_day, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"check_same_thread": False, "timeout": 10}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "pool_recycle": 1800}


def create_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        from pathlib import Path

        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(url, **engine_options(url))


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@lru_cache(maxsize=64)
def _insert_ignoring_statement(dialect: str, table: sa.Table, index_elements: tuple[str, ...]):
    # Built once and executed with the values as parameters: building `.values(**values)` per call
    # cost more CPU than the webhook's own parsing (bench.webhook_ingest, docs/benchmarks.md).
    if dialect == "postgresql":
        stmt = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:  # pragma: no cover - we ship PostgreSQL and SQLite only
        raise NotImplementedError(dialect)
    return stmt.on_conflict_do_nothing(index_elements=list(index_elements)).returning(table.c.id)


def insert_ignoring_conflicts(session: Session, table: sa.Table, values: dict, index_elements: list[str]):
    """INSERT … ON CONFLICT DO NOTHING; returns the new primary key, or None on conflict."""
    stmt = _insert_ignoring_statement(session.get_bind().dialect.name, table, tuple(index_elements))
    # On the session's connection (the ORM's execute path adds nothing to a Core insert but CPU),
    # after the autoflush that path would have done.
    session.flush()
    return session.connection().execute(stmt, values).scalar_one_or_none()


@lru_cache(maxsize=64)
def _insert_many_ignoring_statement(dialect: str, table: sa.Table, index_elements: tuple[str, ...],
                                    returning: tuple[str, ...]):
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_nothing(index_elements=list(index_elements)).returning(*(table.c[name] for name in returning))


def insert_many_ignoring_conflicts(session: Session, table: sa.Table, rows: list[dict], index_elements: list[str],
                                   returning: tuple[str, ...] = ("id",)) -> list[sa.Row]:
    """`insert_ignoring_conflicts` for many rows in one statement (SQLAlchemy's "insertmanyvalues":
    one multi-row `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING RETURNING …` per 1,000 rows, on
    PostgreSQL and SQLite alike). Returns the `returning` columns of the rows actually inserted, in no
    particular order: a row that hit the conflict is simply absent. Every dict must have the same keys."""
    if not rows:
        return []
    stmt = _insert_many_ignoring_statement(session.get_bind().dialect.name, table, tuple(index_elements), tuple(returning))
    session.flush()
    connection = session.connection()
    if len(rows) == 1:  # the plain statement: no executemany machinery for a single row
        return list(connection.execute(stmt, rows[0]).all())
    return list(connection.execute(stmt, rows).all())
