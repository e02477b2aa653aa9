"""Schema changes go through Alembic: one head, and the migrations match the models."""
from alembic.config import Config
from alembic.script import ScriptDirectory

from core.platform.settings import PROJECT_ROOT


def test_single_migration_head():
    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}; merge them with `flask db merge`"


def test_migrations_match_the_models(app):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.platform.db import Base
    from web.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"render_as_batch": True}), Base.metadata)
    assert diff == [], f"models and migrations differ; run `flask --app wsgi db migrate`: {diff}"



def _insert_event(app, status: str) -> None:
    """One inbox row with `status`, committed (the caller removes it). Written with the columns 0008 knows,
    through SQL rather than the models: the schema may be downgraded below later migrations' columns."""
    import sqlalchemy as sa

    from core.access.accounts import ensure_first_account
    from core.integrations.settings import create_integration
    from core.platform.db import utcnow

    services = app.extensions["chatsource.services"]
    with services.session_factory() as session:
        integration = session.execute(sa.text("SELECT id, account_id FROM integrations ORDER BY id LIMIT 1")).first()
        if integration is None:  # made once, at the newest schema
            account_id = ensure_first_account(session).id
            integration = create_integration(session, services, account_id, {"name": "Проверка"})
            session.commit()
            integration = (integration.id, account_id)
        session.execute(sa.text(
            "INSERT INTO webhook_events (account_id, integration_id, dedupe_key, entity, action, item, status, attempts,"
            " received_at) VALUES (:account_id, :integration_id, :dedupe_key, 'talk', 'update', '{}', :status, 0, :now)"),
            {"account_id": integration[1], "integration_id": integration[0], "dedupe_key": f"k-{status}",
             "status": status, "now": utcnow()})
        session.commit()


def _remove_events(app) -> None:
    import sqlalchemy as sa

    from core.models import WebhookEvent

    with app.extensions["chatsource.services"].session_factory() as session:
        session.execute(sa.delete(WebhookEvent))
        session.commit()


def _dispose(app) -> None:
    from web.extensions import db

    db.engine.dispose()
    app.extensions["chatsource.services"].session_factory.kw["bind"].dispose()


def test_webhook_event_status_is_held_to_the_known_values(app):
    """Migration 0008: a status outside core.inbox.event_status.EventStatus is refused by the database, on
    SQLite (batch-recreated table) and PostgreSQL; the downgrade drops the constraint again."""
    import flask_migrate
    import pytest
    import sqlalchemy as sa

    from core.inbox.event_status import EventStatus

    for status in EventStatus:
        _insert_event(app, status.value)  # every known value is accepted
    _remove_events(app)
    with pytest.raises(sa.exc.IntegrityError):
        _insert_event(app, "bogus")
    with app.app_context():
        _dispose(app)
        try:
            flask_migrate.downgrade(revision="0007")
            _insert_event(app, "bogus")  # without the constraint: accepted
            _remove_events(app)
        finally:
            _dispose(app)
            flask_migrate.upgrade()
            _dispose(app)
    with pytest.raises(sa.exc.IntegrityError):
        _insert_event(app, "bogus")
