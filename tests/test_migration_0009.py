"""Migration 0009: the Russian reasons earlier releases stored become message codes + params, on
SQLite and PostgreSQL, with the original words kept; said in Russian they read as before."""
from __future__ import annotations

import contextlib
import importlib.util
import re
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

import core.models  # noqa: F401 - registers the reason codes
from core.platform.messages import Message, render
from core.platform.settings import PROJECT_ROOT
from tests.helpers.databases import pg_database_exists, side_pg_database
from tests.helpers.environment import PG_URL, db_params, settings_for, unavailable
from web.messages import translations_for

_spec = importlib.util.spec_from_file_location("m0009", PROJECT_ROOT / "migrations" / "versions" / "0009_message_codes.py")
m0009 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(m0009)

# Words earlier releases wrote (core/inbox/attribution.py, core/inbox/talk_processing.py, core/inbox/webhooks.py).
OLD_ATTRIBUTION = [
    "Сессия 41 из поля amoCRM: РК «Яндекс Директ»",
    "Сессия 42 из поля amoCRM (поле сессии пусто в сделке, взято из контакта): источник «Прямые заходы», сайт divan.ru",
    "Поле сессии пусто. Мессенджер Telegram: РК «Telegram-канал»",
    "Сессия 999999 не найдена в аккаунте; для мессенджера Wazzup WhatsApp нет соответствия. По умолчанию: источник #7 (удалена)",
    "В поле сессии не число ('abc'). По умолчанию: сайт shop.example.ru",
    "Поле сессии пусто. По умолчанию: не задано",
    "Найдено сверкой с amoCRM: вебхук не пришёл. Поле сессии пусто. Мессенджер Instagram: РК #12 (удалена)",
]
OLD_EVENTS = ["беседа не завершена (is_in_work≠0)", "интеграция не активна", "нужно переподключить amoCRM",
              "не удалось после 8 попыток", "повтор по запросу", "повторы исчерпаны",
              "канал E-mail не передаётся: включите его в настройках интеграции",
              "обращение по этой беседе уже записано", "интеграция выключена до обработки"]
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


@pytest.mark.parametrize("text", OLD_ATTRIBUTION)
def test_each_old_attribution_reason_gets_its_code_and_reads_the_same_in_russian(text):
    code, params = m0009.convert_attribution(text)
    assert code != "legacy" and params.pop("text") == text  # kept; said from the code alone below
    message = Message.from_json(code, params)
    assert render(message, translations_for("ru")) == text
    english = render(message, translations_for("en"))
    names = "Яндекс Директ|Прямые заходы|Telegram-канал"
    assert not CYRILLIC.search(re.sub(names, "", english)), english


@pytest.mark.parametrize("text", OLD_EVENTS)
def test_each_old_event_reason_gets_its_code_and_reads_the_same_in_russian(text):
    code, params = m0009.convert_event(text)
    assert code.startswith("event.") and params.pop("text") == text
    message = Message.from_json(code, params)
    # The e-mail channel's Russian name is «Электронная почта» since issue 15 item 9 (no Latin in the Russian UI).
    assert render(message, translations_for("ru")) == text.replace("канал E-mail", "канал Электронная почта")
    assert not CYRILLIC.search(render(message, translations_for("en")))


def test_words_of_no_known_shape_are_kept_as_they_were():
    for convert in (m0009.convert_attribution, m0009.convert_event):
        code, params = convert("сессия из поля «Сессия UIS»")
        assert (code, params) == ("legacy", {"text": "сессия из поля «Сессия UIS»"})
        assert render(Message.from_json(code, params), translations_for("en")) == "сессия из поля «Сессия UIS»"
    assert m0009.convert_event(None) == (None, None)


def _filler(column: sa.Column):
    """Some value a NOT NULL column accepts, so a row of any table can be made at revision 0007."""
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, (sa.Integer, sa.Numeric)):
        return 1
    if isinstance(kind, sa.DateTime):
        return datetime(2026, 11, 1, tzinfo=timezone.utc)
    if isinstance(kind, sa.JSON) or kind.__class__.__name__ == "JSONB":
        return {}
    return "x"


def _insert(conn, table: sa.Table, **values) -> int:
    row = {c.name: _filler(c) for c in table.columns
           if not c.nullable and c.server_default is None and not c.primary_key}
    row.update(values)
    return conn.execute(table.insert().values(row).returning(table.c.id)).scalar_one()


@pytest.fixture(params=db_params())
def fresh_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/m0009.db"
        return
    from core.platform.settings import normalise_database_url

    url = normalise_database_url(PG_URL) + "_m0009"  # beside the run's leased database, never shared
    try:
        database = side_pg_database(url)
        database.__enter__()
    except Exception as exc:  # pragma: no cover - depends on the machine
        unavailable("PostgreSQL", exc)
    yield url
    database.__exit__(None, None, None)


@pytest.mark.parametrize("ends", ["passes", "fails"])
def test_a_side_database_is_dropped_however_the_test_ends(ends):
    if not PG_URL:
        unavailable("PostgreSQL", "TEST_DATABASE_URL is not set")
    from core.platform.settings import normalise_database_url

    url = normalise_database_url(PG_URL) + "_side"
    with pytest.raises(RuntimeError) if ends == "fails" else contextlib.nullcontext():
        with side_pg_database(url):
            assert pg_database_exists(url)
            if ends == "fails":
                raise RuntimeError("the test failed")
    assert not pg_database_exists(url)


def test_the_migration_converts_stored_rows_and_the_downgrade_gives_the_words_back(fresh_url, tmp_path):
    import flask_migrate

    from web import create_app
    from web.extensions import db

    app = create_app(settings_for(fresh_url, tmp_path))
    with app.app_context():
        if fresh_url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(sa.text("drop schema public cascade; create schema public"))
        flask_migrate.upgrade(revision="0007")
        meta = sa.MetaData()
        meta.reflect(db.engine)
        with db.engine.begin() as conn:
            account = _insert(conn, meta.tables["accounts"])
            integration = _insert(conn, meta.tables["integrations"], account_id=account, traffic_type="campaign",
                                  session_field_entity="leads", status="connected")
            for n, text in enumerate(OLD_ATTRIBUTION + ["нет сессии"]):
                _insert(conn, meta.tables["requests"], account_id=account, integration_id=integration, talk_id=n,
                        attribution="default", attribution_reason=text, channel="telegram", session_id=None,
                        site_id=None, campaign_id=None, source_id=None)
            for n, text in enumerate(OLD_EVENTS + [None]):
                _insert(conn, meta.tables["webhook_events"], account_id=account, integration_id=integration,
                        dedupe_key=f"k{n}", status_reason=text, status="done", request_id=None,
                        replay_run_id=None)

        flask_migrate.upgrade(revision="0009")
        with db.engine.connect() as conn:
            requests = conn.execute(sa.text("select attribution_reason_code, attribution_reason_params from requests "
                                            "order by talk_id")).all()
            events = conn.execute(sa.text("select status_reason_code, status_reason_params from webhook_events "
                                          "order by id")).all()
        codes = [row[0] for row in requests]
        assert codes[:3] == ["attribution.session", "attribution.session_noted", "attribution.messenger"]
        assert codes[-2:] == ["attribution.reconciled", "legacy"]
        ru = translations_for("ru")
        said = [render(Message.from_json(code, m0009_params(params)), ru) for code, params in requests]
        assert said == OLD_ATTRIBUTION + ["нет сессии"]
        assert [row[0] for row in events][-1] is None
        assert [render(Message.from_json(c, m0009_params(p)), ru) for c, p in events[:-1]] == [t.replace("канал E-mail", "канал Электронная почта") for t in OLD_EVENTS]  # «Электронная почта»: issue 15 item 9

        flask_migrate.downgrade(revision="0007")
        with db.engine.connect() as conn:
            back = conn.execute(sa.text("select attribution_reason from requests order by talk_id")).scalars().all()
            back_events = conn.execute(sa.text("select status_reason from webhook_events order by id")).scalars().all()
        assert back == OLD_ATTRIBUTION + ["нет сессии"] and back_events == OLD_EVENTS + [None]
        db.engine.dispose()


def m0009_params(value):
    """JSON columns read through plain SQL: a dict on PostgreSQL, text on SQLite."""
    import json

    return json.loads(value) if isinstance(value, str) else value
