"""Driving the admin with Flask's test client the way a browser does: sign in through the form,
read the CSRF token from the page, post forms."""
from __future__ import annotations

import html
import re

from core.access.accounts import create_account, ensure_first_account, set_user

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_from(page_html: str) -> str:
    match = _TOKEN.search(page_html)
    assert match, "the page has no CSRF token"
    return html.unescape(match.group(1) or match.group(2))


def make_user(app, email="admin@example.ru", password=PASSWORD, account_id=None, account_name=None) -> tuple[int, int]:
    """(user id, account id); a new account when `account_name` is given."""
    with app.extensions["chatsource.services"].session_factory() as session:
        if account_name:
            account_id = create_account(session, account_name).id
        elif account_id is None:
            account_id = ensure_first_account(session).id
        user = set_user(session, account_id, email, password)
        session.commit()
        return user.id, account_id


def login(client, email="admin@example.ru", password=PASSWORD, next_url=None):
    page = client.get("/login")
    data = {"email": email, "password": password, "csrf_token": csrf_from(page.get_data(as_text=True))}
    return client.post("/login" + (f"?next={next_url}" if next_url else ""), data=data)


def signed_in(app, email="admin@example.ru", **kwargs):
    """A fresh test client signed in as a (new) admin user."""
    make_user(app, email=email, **kwargs)
    client = app.test_client()
    response = login(client, email=email)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def post_form(client, url: str, data: dict, page_url: str | None = None, **kwargs):
    """POST like a browser: the CSRF token comes from the page that holds the form."""
    page = client.get(page_url or url)
    assert page.status_code == 200, (page_url or url, page.status_code)
    return client.post(url, data={**data, "csrf_token": csrf_from(text(page))}, **kwargs)


def confirm_connect(app, browser, page, email="connector@example.ru"):
    """Finish a connect that amoCRM sent back outside the admin's session (e.g. one started through
    the Data API): `page` is where the callback left `browser` (a requests.Session against the live
    server) — the sign-in page. Sign in as a user of the integration's account, press «Подключить»."""
    from urllib.parse import urlsplit

    from core.models import OAuthState

    assert "/login?next=" in page.url and "/oauth/amocrm/confirm/" in page.url, page.url
    with app.extensions["chatsource.services"].session_factory() as session:
        import sqlalchemy as sa

        account_id = session.scalar(sa.select(OAuthState.account_id).where(OAuthState.confirm_hash.is_not(None))
                                    .order_by(OAuthState.id.desc()).limit(1))
    make_user(app, email=email, account_id=account_id)
    signed = browser.post(page.url, data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)}, timeout=20)
    assert "/oauth/amocrm/confirm/" in urlsplit(signed.url).path and 'data-result="confirm"' in signed.text, signed.text[:500]
    return browser.post(signed.url, data={"csrf_token": csrf_from(signed.text)}, timeout=20)
