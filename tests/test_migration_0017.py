"""Migration 0017 turns what older releases wrote in one language into messages: the sweeper's Russian
words in an event's `error` become the status reason `event.worker_released`, and «Online chat» /
«E-mail» as the messenger of a stored attribution reason become the channels' messages (SQLite here;
the suite's PostgreSQL run migrates an empty database)."""
from __future__ import annotations

import json

import sqlalchemy as sa

from core.platform.messages import Message, render
from tests.helpers.environment import settings_for
from web.messages import translations_for


def _insert(conn, table: str, **values) -> int:
    """A row in the schema as it stands: every NOT NULL column without a default gets a placeholder."""
    for column in sa.inspect(conn).get_columns(table):
        name = column["name"]
        if name in values or name == "id" or column["nullable"] or column.get("default") is not None:
            continue
        kind = str(column["type"]).upper()
        values[name] = 0 if ("INT" in kind or "BOOL" in kind) else ("2026-01-01 09:00:00" if ("DATE" in kind or "TIME" in kind)
                                                                    else f"{table}-{name}")
    conn.execute(sa.text(f"insert into {table} ({', '.join(values)}) values ({', '.join(':' + k for k in values)})"), values)
    return conn.execute(sa.text("select last_insert_rowid()")).scalar()


def test_old_words_become_messages_in_the_readers_language(tmp_path):
    import flask_migrate

    from web import create_app
    from web.extensions import db

    no_mapping = {"code": "attribution.note.no_mapping", "params": {"messenger": "E-mail"}}
    old_reason = {"notes": [{"code": "attribution.note.field_empty", "params": {}}, no_mapping],
                  "messenger": "Online chat", "target": {"code": "attribution.target.none", "params": {}}}
    app = create_app(settings_for(f"sqlite:///{tmp_path}/m.db", tmp_path))
    with app.app_context():
        flask_migrate.upgrade(revision="0014")
        with db.engine.begin() as conn:
            account = _insert(conn, "accounts", name="A")
            integration = _insert(conn, "integrations", account_id=account, name="I", webhook_token_hash="h", status="new",
                                  session_field_entity="leads", traffic_type="campaign")
            waiting = _insert(conn, "webhook_events", account_id=account, integration_id=integration, dedupe_key="a",
                              action="update", talk_id=1, status="received", error="рабочий процесс прервался; повтор")
            other = _insert(conn, "webhook_events", account_id=account, integration_id=integration, dedupe_key="b",
                            action="update", talk_id=2, status="failed", error="AmoTransient: boom")
            request = _insert(conn, "requests", account_id=account, integration_id=integration, talk_id=1,
                              channel="site_chat", attribution="messenger", attribution_reason_code="attribution.messenger",
                              attribution_reason_params=json.dumps(old_reason))
        flask_migrate.upgrade(revision="0017")
        with db.engine.connect() as conn:
            events = {r.id: (r.error, r.status_reason_code) for r in conn.execute(
                sa.text("select id, error, status_reason_code from webhook_events"))}
            code, params = conn.execute(sa.text("select attribution_reason_code, attribution_reason_params from requests "
                                                "where id = :id"), {"id": request}).one()
            assert "report_columns" in {c["name"] for c in sa.inspect(conn).get_columns("users")}
        db.engine.dispose()
    assert events[waiting] == (None, "event.worker_released") and events[other] == ("AmoTransient: boom", None)
    reason = Message.from_json(code, json.loads(params) if isinstance(params, str) else params)
    ru = render(reason, translations_for("ru"))
    assert "Онлайн-чат на сайте" in ru and "Электронная почта" in ru and "Online chat" not in ru and "E-mail" not in ru
