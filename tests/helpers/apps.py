"""The product's app for a test: made on a test database, disposed, given API tokens, drained of its queues."""
from __future__ import annotations

import time

from tests.helpers.environment import settings_for


def make_app(db_url, tmp_path, *, redis_client=None, public_url="http://127.0.0.1:5000", **overrides):
    from web import create_app

    settings = settings_for(db_url, tmp_path, public_url=public_url, **overrides)
    return create_app(settings, redis_client=redis_client)


def dispose(app):
    from web.extensions import db

    worker = app.extensions.get("chatsource.embedded_worker")
    if worker is not None:
        worker.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    app.extensions["chatsource.services"].session_factory.kw["bind"].dispose()
    from web import collect_fast

    collect_fast.dispose(app)


def api_headers_for(app, account_id, name="test") -> dict:
    from core.access.accounts import create_api_token

    with app.extensions["chatsource.services"].session_factory() as session:
        _, token = create_api_token(session, account_id, name)
        session.commit()
    return {"Authorization": f"Bearer {token}"}


def drain(app, timeout_s: float = 30.0) -> None:
    """Run a Dramatiq worker on the app's broker until the talk queues are empty."""
    import dramatiq

    broker = app.extensions["chatsource.broker"]
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        deadline = time.monotonic() + timeout_s
        for queue in ("talks", "maintenance"):
            if queue in broker.get_declared_queues():
                broker.join(queue, timeout=int(max(deadline - time.monotonic(), 1) * 1000))
        worker.join()
    finally:
        worker.stop()


def other_account_headers(app):
    """API headers of a second account, made for the test: what it must never see of the first."""
    from core.access.accounts import create_account

    with app.extensions["chatsource.services"].session_factory() as session:
        account = create_account(session, "Другой клиент")
        session.commit()
        account_id = account.id
    return api_headers_for(app, account_id, "b")
