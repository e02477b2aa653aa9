"""A database that cannot be reached: every endpoint answers 503 (never a 500), from the one handler in
web/errors.py. JSON endpoints keep the API's error body; pages get a short text in the user's language.
The database here is a real SQLite file the driver cannot open (its folder does not exist), so each
request meets the driver's own OperationalError. (tests/faults/test_postgres_restart.py stops a real
PostgreSQL while webhooks arrive.)"""
from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from tests.helpers.apps import dispose, make_app
from web.i18n import LOCALE_COOKIE


@pytest.fixture
def unreachable_app(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/no-such-folder/chatsource.db", tmp_path)
    yield app
    dispose(app)


def assert_json_503(response, message: str) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json() == {"error": {"code": "unavailable", "message": message}}
    assert response.headers["Retry-After"] == "30"


def test_the_data_api_answers_503_json(unreachable_app):
    client = unreachable_app.test_client()
    response = client.get("/api/v1/sites", headers={"Authorization": "Bearer some-token"})
    assert_json_503(response, "the database is unavailable; try again shortly")


def test_the_webhook_answers_503_so_amocrm_retries(unreachable_app):
    client = unreachable_app.test_client()
    response = client.post("/webhooks/amocrm/some-webhook-token/", data="leads[status][0][id]=1",
                           content_type="application/x-www-form-urlencoded")
    assert_json_503(response, "the database is unavailable; amoCRM will retry")


def test_the_tracking_script_answers_503_json(unreachable_app):
    client = unreachable_app.test_client()
    assert_json_503(client.get("/t/0123456789abcdef01234567.js"), "the database is unavailable; try again shortly")


@pytest.mark.parametrize("locale, text", [("ru", "База данных недоступна; попробуйте через минуту."),
                                          ("en", "The database is unavailable; try again in a minute.")])
def test_a_page_answers_503_text_in_the_users_language(unreachable_app, locale, text):
    client = unreachable_app.test_client()
    client.set_cookie(LOCALE_COOKIE, locale)
    response = client.get("/oauth/amocrm/callback?state=some-state&code=some-code")
    assert response.status_code == 503 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == text


def test_the_503_is_answered_in_one_place(unreachable_app):
    """No blueprint has its own handler for database errors that would answer them differently: the
    app's handler (web/errors.py) is the only one for OperationalError and the DBAPIError above it."""
    handlers = {(blueprint, cls) for blueprint, by_code in unreachable_app.error_handler_spec.items()
                for classes in by_code.values() for cls in classes}
    down = {(blueprint, cls) for blueprint, cls in handlers if cls in (OperationalError, DBAPIError)}
    assert down == {(None, DBAPIError)}
