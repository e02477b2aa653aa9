"""Issue 10 §3 (sign-in) and §4 (sessions): a per-IP limit beside the per-user lock, a failure
counter that parallel guesses cannot undercount, one answer for every failure (nothing tells which
e-mails have an account), a session lifetime, and a sign-out that ends every copy of the cookie."""
from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa

from core.access.login import FREE_FAILURES, authenticate
from core.models import User
from tests.helpers.admin_helpers import PASSWORD, csrf_from, login, make_user, text
from tests.helpers.apps import dispose, make_app

HOURS = 3600


def failure_answer(response) -> tuple[int, str, str | None]:
    error = re.search(r'data-testid="login-error">([^<]+)<', text(response))
    return response.status_code, error.group(1) if error else "", response.headers.get("Retry-After")


def test_every_failure_gets_the_same_answer(app, client):
    make_user(app)
    make_user(app, email="off@example.ru")
    with app.extensions["chatsource.services"].session_factory() as session:
        session.scalar(sa.select(User).where(User.email == "off@example.ru")).is_active = False
        session.commit()
    wrong_password = failure_answer(login(client, password="not the password"))
    unknown_email = failure_answer(login(client, email="nobody@example.ru"))
    switched_off = failure_answer(login(client, email="off@example.ru"))
    for _ in range(FREE_FAILURES):
        login(client, password="guess")
    locked = failure_answer(login(client))  # the right password, while locked
    assert wrong_password == unknown_email == switched_off == locked
    assert wrong_password[0] == 401 and wrong_password[1].startswith("Неверный e-mail или пароль.")


def test_guesses_from_one_address_are_limited_whatever_the_email(db_url, tmp_path):
    app = make_app(db_url, tmp_path, login_attempts_per_ip=3)
    try:
        make_user(app)
        client = app.test_client()
        for email in ("a@example.ru", "b@example.ru", "c@example.ru"):  # spread over e-mails: no per-user lock helps
            assert login(client, email=email, password="guess").status_code == 401
        over = login(client)  # even the right password, from this address
        assert over.status_code == 429 and 1 <= int(over.headers["Retry-After"]) <= 1200
        assert "Слишком много попыток входа из вашей сети" in text(over)
        assert client.get("/admin/").status_code == 302
        elsewhere = app.test_client()
        page = elsewhere.get("/login", environ_base={"REMOTE_ADDR": "198.51.100.20"})
        signed = elsewhere.post("/login", environ_base={"REMOTE_ADDR": "198.51.100.20"}, data={
            "email": "admin@example.ru", "password": PASSWORD, "csrf_token": csrf_from(text(page))})
        assert signed.status_code == 302
    finally:
        dispose(app)


def test_parallel_guesses_are_all_counted(app):
    """Two requests that read the user before either wrote: the old read-modify-write lost one."""
    make_user(app)
    factory = app.extensions["chatsource.services"].session_factory
    with factory() as first, factory() as second:
        seen = [session.scalar(sa.select(User)) for session in (first, second)]  # held: both keep seeing 0
        assert [user.failed_logins for user in seen] == [0, 0]
        for session in (first, second):
            assert authenticate(session, "admin@example.ru", "guess").status == "invalid"
            session.commit()
    with factory() as session:
        assert session.scalar(sa.select(User.failed_logins)) == 2


def _copy_cookie(source, target):
    cookie = source.get_cookie("session")
    target.set_cookie("session", cookie.value, domain=cookie.domain or "localhost")


def test_signing_out_ends_every_copy_of_the_session(app):
    make_user(app)
    browser, copy = app.test_client(), app.test_client()
    assert login(browser).status_code == 302
    _copy_cookie(browser, copy)
    assert copy.get("/admin/").status_code == 200  # a stolen cookie works… until the owner signs out
    home = browser.get("/admin/")
    assert browser.post("/logout", data={"csrf_token": csrf_from(text(home))}).status_code == 302
    assert copy.get("/admin/").status_code == 302
    assert browser.get("/admin/").status_code == 302


def test_a_new_password_ends_every_session(app):
    make_user(app)
    browser = app.test_client()
    assert login(browser).status_code == 302
    make_user(app, password="a brand new password")
    assert browser.get("/admin/").status_code == 302
    assert login(browser, password="a brand new password").status_code == 302


def test_a_session_lives_its_lifetime_from_sign_in(app):
    make_user(app)
    browser = app.test_client()
    response = login(browser)
    assert "Expires=" in response.headers["Set-Cookie"]  # a permanent cookie, not a browser-session one
    assert app.permanent_session_lifetime.total_seconds() == 12 * HOURS
    with browser.session_transaction() as session:
        session["cs_signed_in_at"] = int(time.time()) - 11 * HOURS
    assert browser.get("/admin/").status_code == 200
    with browser.session_transaction() as session:
        session["cs_signed_in_at"] = int(time.time()) - 12 * HOURS - 60
    assert browser.get("/admin/").status_code == 302


@pytest.mark.parametrize("hours", [1])
def test_the_lifetime_is_a_setting(db_url, tmp_path, hours):
    app = make_app(db_url, tmp_path, session_lifetime_hours=hours)
    try:
        make_user(app)
        browser = app.test_client()
        assert login(browser).status_code == 302
        with browser.session_transaction() as session:
            session["cs_signed_in_at"] = int(time.time()) - hours * HOURS - 60
        assert browser.get("/admin/").status_code == 302
    finally:
        dispose(app)


def test_a_user_from_before_session_nonces_gets_one_at_sign_in(app):
    make_user(app)
    with app.extensions["chatsource.services"].session_factory() as session:
        session.scalar(sa.select(User)).session_nonce = None
        session.commit()
    browser = app.test_client()
    assert login(browser).status_code == 302 and browser.get("/admin/").status_code == 200
    with app.extensions["chatsource.services"].session_factory() as session:
        assert session.scalar(sa.select(User.session_nonce))
