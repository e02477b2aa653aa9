"""Migration 0012 flags the requests already recorded: each contact's series by chat creation time,
repeat within 30 days, pointing at the first request (SQLite here; the suite's PostgreSQL run
migrates an empty database)."""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from tests.helpers.environment import settings_for

T0 = datetime(2026, 1, 1, 9, 0)


def _insert(conn, table: str, **values) -> int:
    """A row in the schema as it stands: every NOT NULL column without a default gets a placeholder."""
    for column in sa.inspect(conn).get_columns(table):
        name = column["name"]
        if name in values or column["nullable"] or column.get("default") is not None or column.get("autoincrement") is True:
            continue
        if name == "id":
            continue
        kind = str(column["type"]).upper()
        values[name] = 0 if ("INT" in kind or "BOOL" in kind) else (T0 if ("DATE" in kind or "TIME" in kind) else f"{table}-{name}")
    conn.execute(sa.text(f"insert into {table} ({', '.join(values)}) values ({', '.join(':' + k for k in values)})"), values)
    return conn.execute(sa.text("select last_insert_rowid()")).scalar()


def test_existing_requests_get_their_contact_and_repeat_flags(tmp_path):
    import flask_migrate

    from web import create_app
    from web.extensions import db

    app = create_app(settings_for(f"sqlite:///{tmp_path}/m.db", tmp_path))
    with app.app_context():
        flask_migrate.upgrade(revision="0007")
        with db.engine.begin() as conn:
            account = _insert(conn, "accounts", name="A")
            integration = _insert(conn, "integrations", account_id=account, name="I", webhook_token_hash="h", status="new",
                                  session_field_entity="leads", traffic_type="campaign")
            talk = iter(range(1, 100))

            def request(days: float, **contact) -> int:
                return _insert(conn, "requests", account_id=account, integration_id=integration, talk_id=next(talk),
                               channel="telegram", attribution="default", attribution_reason="x",
                               created_at=T0 + timedelta(days=days), **contact)

            later = request(10, amo_contact_id=5)
            first = request(0, amo_contact_id=5)        # recorded after, created before: the first
            far = request(45, amo_contact_id=5)         # 35 days after the previous one: new again
            by_phone = request(1, phone="+79151234567")
            nobody = request(2)
        flask_migrate.upgrade(revision="0012")
        with db.engine.connect() as conn:
            rows = {r.id: (r.contact_key, bool(r.is_repeat), r.first_request_id) for r in conn.execute(
                sa.text("select id, contact_key, is_repeat, first_request_id from requests"))}
            window = conn.execute(sa.text("select repeat_window_days from accounts")).scalar()
        db.engine.dispose()
    key = f"amo:{integration}:5"
    assert rows == {first: (key, False, None), later: (key, True, first), far: (key, False, None),
                    by_phone: ("tel:+79151234567", False, None), nobody: (None, False, None)}
    assert window == 30
