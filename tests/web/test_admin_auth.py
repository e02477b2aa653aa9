"""Signing in to the admin: every admin page is locked, CSRF on every form, `next` stays on this site,
password guessing is slowed down, sign-out works, and the UI speaks Russian first, English on request."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.access.login import FREE_FAILURES, lock_seconds
from core.models import Site, User
from core.platform.db import utcnow
from tests.helpers.admin_helpers import PASSWORD, csrf_from, login, make_user, post_form, signed_in, text


def _admin_get_urls(app) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or "GET" not in rule.methods or rule.endpoint.endswith(".static"):
            continue
        urls.append(re.sub(r"<int:[a-z_]+>", "1", rule.rule).replace("<path:filename>", "x"))
    return urls


def test_every_admin_page_sends_a_visitor_to_sign_in(app, client):
    urls = _admin_get_urls(app)
    assert {"/admin/", "/admin/integrations/", "/admin/integrations/1/", "/admin/sites/", "/admin/events/"} <= set(urls)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login?next="), (url, response.headers["Location"])


def test_posting_to_the_admin_without_signing_in_changes_nothing(app, client):
    make_user(app)
    token = csrf_from(text(client.get("/login")))  # a visitor can get a token, but not past the lock
    response = client.post("/admin/sites/new/", data={"name": "Чужой", "domain": "evil.example", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    with app.extensions["chatsource.services"].session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Site)) == 0


def test_sign_in_opens_the_requested_page_and_sign_out_closes_the_admin(app, client):
    make_user(app)
    assert client.get("/").headers["Location"] == "/admin/"
    wrong = login(client, password="not the password", next_url="/admin/sites/")
    assert wrong.status_code == 401 and "Неверный e-mail или пароль" in text(wrong)
    assert client.get("/admin/").status_code == 302

    response = login(client, next_url="/admin/sites/")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/sites/"
    home = client.get("/admin/")
    assert home.status_code == 200 and "admin@example.ru" in text(home) and "Выйти" in text(home)
    assert home.headers["X-Frame-Options"] == "DENY"

    out = client.post("/logout", data={"csrf_token": csrf_from(text(home))})
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "http:/evil.example", "%2F%2Fevil.example",
])
def test_next_only_leads_to_a_page_of_this_site(app, client, target):
    make_user(app)
    response = login(client, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"


def test_repeated_wrong_passwords_lock_the_account_for_a_while(app, client):
    """The lock is real but not announced: a locked account answers like a wrong password (and like
    an unknown e-mail, tests/security/test_sign_in.py), so the answer tells nothing about the account."""
    make_user(app)
    for _ in range(FREE_FAILURES):
        assert login(client, password="guess").status_code == 401

    # While locked even the right password is refused, without being checked.
    locked = login(client)
    assert locked.status_code == 401 and "Неверный e-mail или пароль" in text(locked)
    assert "вход приостанавливается на время" in text(locked)
    assert client.get("/admin/").status_code == 302

    services = app.extensions["chatsource.services"]
    with services.session_factory() as session:
        user = session.scalar(sa.select(User))
        assert user.failed_logins == FREE_FAILURES
        user.last_failed_login_at = utcnow() - timedelta(seconds=31)  # the lock has run out
        session.commit()
    # One more wrong password doubles the wait…
    assert login(client, password="guess").status_code == 401
    with services.session_factory() as session:
        user = session.scalar(sa.select(User))
        assert user.failed_logins == FREE_FAILURES + 1
        user.last_failed_login_at = utcnow() - timedelta(seconds=31)
        session.commit()
    assert login(client).status_code == 401  # 31 s is not enough any more
    with services.session_factory() as session:
        user = session.scalar(sa.select(User))
        user.last_failed_login_at = utcnow() - timedelta(seconds=61)
        session.commit()
    # …and the right one, once the wait is over, signs in and forgives the past.
    assert login(client).status_code == 302
    with services.session_factory() as session:
        assert session.scalar(sa.select(User.failed_logins)) == 0


def test_lock_grows_but_never_beyond_a_quarter_of_an_hour():
    assert [lock_seconds(n) for n in range(FREE_FAILURES)] == [0] * FREE_FAILURES
    assert [lock_seconds(FREE_FAILURES + i) for i in range(4)] == [30, 60, 120, 240]
    assert lock_seconds(100) == 15 * 60


def test_unknown_email_and_switched_off_user_cannot_sign_in(app, client):
    user_id, _ = make_user(app)
    assert login(client, email="nobody@example.ru").status_code == 401
    with app.extensions["chatsource.services"].session_factory() as session:
        session.get(User, user_id).is_active = False
        session.commit()
    response = login(client)
    assert response.status_code == 401 and "Неверный e-mail или пароль" in text(response)


def test_forms_without_the_csrf_token_are_refused(app):
    client = signed_in(app)
    assert client.post("/login", data={"email": "admin@example.ru", "password": PASSWORD}).status_code == 400
    response = client.post("/admin/sites/new/", data={"name": "Сайт", "domain": "shop.example.ru"})
    assert response.status_code == 400
    assert client.post("/logout").status_code == 400
    with app.extensions["chatsource.services"].session_factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Site)) == 0
    # With the token from the page the same form works.
    ok = post_form(client, "/admin/sites/new/", {"name": "Сайт", "domain": "shop.example.ru"})
    assert ok.status_code == 302


def test_changing_the_password_signs_out_other_sessions(app):
    client = signed_in(app)
    assert client.get("/admin/").status_code == 200
    make_user(app, password="a brand new password")  # `flask users set` on the same e-mail
    assert client.get("/admin/").status_code == 302


def test_the_admin_speaks_russian_and_switches_to_english(app):
    client = signed_in(app)
    home = text(client.get("/admin/"))
    assert "Интеграции" in home and "Справочники" in home and "Подключить учетную запись" in home
    assert "Список" in text(client.get("/admin/sites/"))  # Flask-Admin's own catalogue

    switched = client.get("/lang/en?next=/admin/sites/")
    assert switched.status_code == 302 and switched.headers["Location"] == "/admin/sites/"
    sites = text(client.get("/admin/sites/"))
    assert "Dictionaries" in sites and "List" in sites and "Справочники" not in sites

    # The choice is remembered on the user: a new browser signs in to English.
    other = app.test_client()
    login(other)
    assert "Connect account" in text(other.get("/admin/"))

    assert client.get("/lang/xx?next=https://evil.example/").headers["Location"] == "/admin/"
    client.get("/lang/ru")
    assert "Интеграции" in text(client.get("/admin/"))


def test_the_sign_in_page_switches_language_before_signing_in(app, client):
    page = client.get("/login")
    assert "Войти" in text(page)
    client.get("/lang/en?next=/login")
    assert "Sign in" in text(client.get("/login")) and "Войти" not in text(client.get("/login"))
