"""Issue 10 §1: linking an amoCRM account to an integration is bound to the admin who pressed
«Подключить». All accounts share one amoCRM app, so the attack is: an admin of account B points his
integration at a victim's amoCRM, presses «Подключить» and sends the consent link to the victim's
amoCRM admin; one click on «Разрешить» must NOT store the victim's tokens in B's integration nor
register B's webhook in the victim's amoCRM. The sandbox is the victim's amoCRM account."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from core.models import Integration, OAuthState
from tests.helpers import http as loopback  # loopback only: never through a proxy
from tests.helpers.admin_helpers import PASSWORD, confirm_connect, csrf_from, login, make_user, post_form, text

pytestmark = pytest.mark.e2e


def new_integration(admin, amo, name="amoCRM"):
    """Step 1 and «Подключить» in the admin; returns amoCRM's consent url."""
    response = post_form(admin, "/admin/integrations/new", {
        "name": name, "amocrm_url": amo.url, "token_url": f"{amo.url}/oauth2/access_token"})
    assert response.status_code == 302 and response.headers["Location"].startswith(amo.url + "/oauth?"), text(response)[:300]
    return response.headers["Location"]


def allow_in_amocrm(consent_url: str) -> str:
    """The victim presses «Разрешить» (the sandbox approves at once); amoCRM's redirect to our callback."""
    redirect = loopback.get(consent_url, allow_redirects=False, timeout=10)
    assert redirect.status_code == 302
    return redirect.headers["Location"]


def nothing_linked(app, amo):
    assert amo.state.get_stats()["code_exchanges"] == 0  # amoCRM's token endpoint never saw the code
    assert amo.state.list_webhooks(internal=True) == []  # no webhook of ours in the victim's amoCRM
    with app.extensions["chatsource.services"].session_factory() as session:
        for row in session.scalars(sa.select(Integration)):
            assert (row.status, row.access_token_enc, row.refresh_token_enc) == ("new", None, None)


@pytest.fixture
def attacker(app):
    make_user(app, email="b@attacker.example", account_name="Аккаунт B")
    client = app.test_client()
    assert login(client, email="b@attacker.example").status_code == 302
    return client


def test_the_victims_click_in_a_browser_without_chatsource_stops_at_sign_in(app, amo, attacker, live):
    callback = allow_in_amocrm(new_integration(attacker, amo))
    victim = loopback.loopback_session()
    page = victim.get(callback, timeout=10)
    assert urlsplit(page.url).path == "/login" and "/oauth/amocrm/confirm/" in page.url
    assert "code=" not in page.url and "state=" not in page.url  # the code went into no other url
    nothing_linked(app, amo)


def test_a_victim_signed_in_to_another_chatsource_account_is_refused(app, amo, attacker, live):
    callback = allow_in_amocrm(new_integration(attacker, amo))
    make_user(app, email="admin@victim.example", account_name="Аккаунт жертвы")
    victim = loopback.loopback_session()
    sign_in = victim.get(f"{live.url}/login", timeout=10)
    victim.post(f"{live.url}/login", data={"email": "admin@victim.example", "password": PASSWORD,
                                           "csrf_token": csrf_from(sign_in.text)}, timeout=10)
    refused = victim.get(callback, timeout=10)
    assert refused.status_code == 403 and "/oauth/amocrm/confirm/" in refused.url
    assert "другому аккаунту Chatsource" in refused.text and "Аккаунт B" not in refused.text
    forced = victim.post(refused.url, data={"csrf_token": "x"}, timeout=10)
    assert forced.status_code == 403
    nothing_linked(app, amo)


def test_the_attacker_cannot_replay_the_state_in_his_own_session(app, amo, attacker, live):
    callback = allow_in_amocrm(new_integration(attacker, amo))
    loopback.get(callback, timeout=10)  # the victim's browser spends the state
    back = urlsplit(callback)
    replayed = attacker.get(f"{back.path}?{back.query}")
    assert replayed.status_code == 400 and "уже использована" in text(replayed)
    nothing_linked(app, amo)


def test_the_admins_own_redirect_needs_no_extra_click(app, amo, attacker):
    callback = urlsplit(allow_in_amocrm(new_integration(attacker, amo)))
    page = attacker.get(f"{callback.path}?{callback.query}")
    assert page.status_code == 200 and 'data-result="connected"' in text(page)
    assert amo.state.get_stats()["code_exchanges"] == 1 and len(amo.state.list_webhooks(internal=True)) == 1


def test_the_same_user_in_another_browser_must_confirm(app, amo, attacker):
    callback = urlsplit(allow_in_amocrm(new_integration(attacker, amo)))
    other_browser = app.test_client()
    assert login(other_browser, email="b@attacker.example").status_code == 302
    page = other_browser.get(f"{callback.path}?{callback.query}")
    assert page.status_code == 302 and "/oauth/amocrm/confirm/" in page.headers["Location"]
    assert amo.state.get_stats()["code_exchanges"] == 0


def test_an_api_started_connect_is_confirmed_by_a_user_of_the_account(app, amo, client, api, account_id, live):
    integration = client.post("/api/v1/integrations", headers=api, json={
        "name": "Через API", "amocrm_url": amo.url, "token_url": f"{amo.url}/oauth2/access_token"}).get_json()
    authorize = client.post(f"/api/v1/integrations/{integration['id']}/connect", headers=api, json={}).get_json()["authorize_url"]
    browser = loopback.loopback_session()
    sign_in = browser.get(authorize, timeout=10)
    assert amo.state.get_stats()["code_exchanges"] == 0  # not before the confirmation

    # A user of another account signs in on that page: refused, and the link stays good for the right user.
    make_user(app, email="other@example.ru", account_name="Чужой")
    intruder = loopback.loopback_session()
    page = intruder.post(sign_in.url, data={"email": "other@example.ru", "password": PASSWORD,
                                            "csrf_token": csrf_from(intruder.get(sign_in.url, timeout=10).text)}, timeout=10)
    assert page.status_code == 403
    forced = intruder.post(page.url, data={"csrf_token": csrf_from(intruder.get(f"{live.url}/login", timeout=10).text)},
                           timeout=10)
    assert forced.status_code == 403
    assert amo.state.get_stats()["code_exchanges"] == 0

    done = confirm_connect(app, browser, sign_in, email="admin@example.ru")
    assert done.status_code == 200 and 'data-result="connected"' in done.text
    assert amo.state.get_stats()["code_exchanges"] == 1 and len(amo.state.list_webhooks(internal=True)) == 1
    # The confirmation link is single-use.
    again = browser.post(urlsplit(done.url).geturl(), data={"csrf_token": "x"}, timeout=10)
    assert again.status_code == 400 and "уже подтверждено" in again.text
    assert intruder.get(done.url, timeout=10).status_code == 403  # to another account it stays a plain refusal
    assert amo.state.get_stats()["code_exchanges"] == 1


def test_the_confirmation_page_names_what_is_linked_and_needs_the_csrf_token(app, amo, client, api, account_id, live):
    integration = client.post("/api/v1/integrations", headers=api, json={
        "name": "Основной amoCRM", "amocrm_url": amo.url, "token_url": f"{amo.url}/oauth2/access_token"}).get_json()
    authorize = client.post(f"/api/v1/integrations/{integration['id']}/connect", headers=api, json={}).get_json()["authorize_url"]
    browser = loopback.loopback_session()
    sign_in = browser.get(authorize, timeout=10)
    make_user(app, email="admin@example.ru", account_id=account_id)
    page = browser.post(sign_in.url, data={"email": "admin@example.ru", "password": PASSWORD,
                                           "csrf_token": csrf_from(sign_in.text)}, timeout=10)
    assert page.status_code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    assert f'data-testid="amocrm-account">{amo.host}<' in page.text
    assert 'data-testid="integration-name">Основной amoCRM<' in page.text and 'data-testid="account-name">Мой аккаунт<' in page.text
    assert "Подключить" in page.text and "20 минут" in page.text
    forged = browser.post(page.url, data={}, timeout=10)  # a cross-site form cannot carry the token
    assert forged.status_code == 400 and amo.state.get_stats()["code_exchanges"] == 0


def test_a_code_older_than_20_minutes_is_not_exchanged(app, amo, client, api, account_id):
    integration = client.post("/api/v1/integrations", headers=api, json={
        "name": "Поздно", "amocrm_url": amo.url, "token_url": f"{amo.url}/oauth2/access_token"}).get_json()
    authorize = client.post(f"/api/v1/integrations/{integration['id']}/connect", headers=api, json={}).get_json()["authorize_url"]
    browser = loopback.loopback_session()
    sign_in = browser.get(authorize, timeout=10)
    with app.extensions["chatsource.services"].session_factory() as session:
        row = session.scalar(sa.select(OAuthState).where(OAuthState.confirm_hash.is_not(None)))
        row.pending_since -= timedelta(minutes=21)
        session.commit()
    make_user(app, email="admin@example.ru", account_id=account_id)
    page = browser.post(sign_in.url, data={"email": "admin@example.ru", "password": PASSWORD,
                                           "csrf_token": csrf_from(sign_in.text)}, timeout=10)
    assert page.status_code == 400 and "действует 20 минут" in page.text and "истёк" in page.text
    assert amo.state.get_stats()["code_exchanges"] == 0


def test_the_confirmation_token_never_reaches_the_logs():
    from core.platform.log_redaction import redact as _redact

    assert _redact('"GET /oauth/amocrm/confirm/SECRET-TOKEN HTTP/1.1" 200') == '"GET /oauth/amocrm/confirm/*** HTTP/1.1" 200'
    assert _redact("GET /login?next=%2Foauth%2Famocrm%2Fconfirm%2FSECRET-TOKEN") == "GET /login?next=%2Foauth%2Famocrm%2Fconfirm%2F***"
