"""The test databases: created on PostgreSQL, built by the real migrations, emptied between tests."""
from __future__ import annotations

from contextlib import contextmanager
from urllib.parse import urlsplit

import sqlalchemy as sa

from tests.helpers.environment import settings_for


def ensure_pg_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = url.replace(f"/{name}", "/postgres", 1)
    engine = sa.create_engine(admin_url.replace("postgresql://", "postgresql+psycopg2://", 1), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if not conn.scalar(sa.text("select 1 from pg_database where datname = :n"), {"n": name}):
                conn.execute(sa.text(f'create database "{name}"'))
    finally:
        engine.dispose()


def pg_database_exists(url: str) -> bool:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    engine = sa.create_engine(url.replace(f"/{name}", "/postgres", 1).replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        with engine.connect() as conn:
            return bool(conn.scalar(sa.text("select 1 from pg_database where datname = :n"), {"n": name}))
    finally:
        engine.dispose()


@contextmanager
def side_pg_database(url: str):
    """A PostgreSQL database beside the run's leased one, for a test that needs a fresh one: created, then
    dropped however the test ends (the run's own lease drops only its own database)."""
    from tests.helpers.run_services import drop_pg_database

    ensure_pg_database(url)
    try:
        yield url
    finally:
        drop_pg_database(url)


def migrate(url: str, tmp_path) -> None:
    """Build the schema with the real migrations (exercising them), from scratch."""
    import flask_migrate

    from core.platform.db import Base
    from web import create_app

    app = create_app(settings_for(url, tmp_path))
    with app.app_context():
        from web.extensions import db

        if url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(sa.text("drop schema public cascade; create schema public"))
        flask_migrate.upgrade()
        db.engine.dispose()
    assert Base.metadata.tables


def truncate(url: str) -> None:
    from core.platform.db import Base

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
            if url.startswith("postgresql"):
                conn.execute(sa.text("truncate " + ", ".join(tables) + " restart identity cascade"))
            else:
                for table in tables:
                    conn.execute(sa.text(f"delete from {table}"))
    finally:
        engine.dispose()
