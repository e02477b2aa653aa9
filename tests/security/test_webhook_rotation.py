"""Issue 10 §4: a leaked webhook url is replaced from the admin or the API; the old one dies at once.

The url's path is its only secret (amoCRM signs nothing): whoever has seen it can post fake closed
chats. Rotation: a new token, the old url 404 immediately, and in amoCRM the new url subscribed and
the old hook deleted — in either of the forms the url may be registered in (Kommo users add a slash)."""
from __future__ import annotations

import logging

import pytest

from core.integrations.settings import create_integration
from tests.helpers.admin_helpers import csrf_from, login, make_user, text
from tests.helpers.apps import drain
from tests.helpers.pipeline_helpers import connected_integration, requests_of

FORM = "application/x-www-form-urlencoded"


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _close_body(talk_id: int) -> dict:
    return {"talk[update][0][talk_id]": str(talk_id), "talk[update][0][contact_id]": "5", "talk[update][0][chat_id]": "c",
            "talk[update][0][entity_id]": "6", "talk[update][0][entity_type]": "lead", "talk[update][0][origin]": "telegram",
            "talk[update][0][is_in_work]": "0", "talk[update][0][is_read]": "1", "talk[update][0][created_at]": "1726581000",
            "talk[update][0][updated_at]": "1726581548", "account[id]": "31415926", "account[subdomain]": "sandbox"}


def _destinations(amo) -> list[str]:
    return [h["destination"] for h in amo.state.list_webhooks(internal=True)]


def test_api_rotation_kills_the_old_url_and_moves_the_amocrm_hook(app, client, api, amo):
    setup = connected_integration(client, api, amo)
    old = setup.webhook_url
    # The same url in its other form too (registered without the slash before Kommo's form was known).
    other_form = old.rstrip("/") if old.endswith("/") else old + "/"
    amo.state.upsert_webhook(other_form, ["update_talk"])
    assert client.post(_path(old), data=_close_body(1), content_type=FORM).status_code == 200

    response = client.post(f"/api/v1/integrations/{setup.integration_id}/webhook/rotate", headers=api)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    new = body["webhook_url"]
    assert new != old and body["connected"] and body["webhook_registered"] and body["amocrm_error"] is None
    assert body["old_hooks_deleted"] == 2

    assert client.post(_path(old), data=_close_body(2), content_type=FORM).status_code == 404
    assert _destinations(amo) == [new]
    integration = client.get(f"/api/v1/integrations/{setup.integration_id}", headers=api).get_json()
    assert integration["webhook_url"] == new and integration["webhook_registered"] is True

    # A chat closed now reaches us through the new url and becomes a request.
    chat = amo.state.create_chat(contact={"name": "Анна", "phones": ["+79160000001"]}, lead={}, origin="telegram")
    amo.state.close_talk(chat["talk_id"], force_close=True, control=True)
    drain(app)
    recorded = {r["talk_id"] for r in requests_of(client, api)}
    assert chat["talk_id"] in recorded and 2 not in recorded  # talk 2 came to the dead url


def test_amocrm_unreachable_still_rotates_and_says_so(app, client, api, amo):
    setup = connected_integration(client, api, amo)
    amo.configure(blocked=True)
    body = client.post(f"/api/v1/integrations/{setup.integration_id}/webhook/rotate", headers=api).get_json()
    assert body["webhook_url"] != setup.webhook_url and body["webhook_registered"] is False
    assert "blocked" in body["amocrm_error"]
    assert client.post(_path(setup.webhook_url), data=_close_body(3), content_type=FORM).status_code == 404
    integration = client.get(f"/api/v1/integrations/{setup.integration_id}", headers=api).get_json()
    assert integration["webhook_registered"] is False  # so the page offers «register again»


def test_a_not_connected_integration_just_gets_a_new_url(client, api, services, account_id):
    with services.session_factory() as session:
        integration = create_integration(session, services, account_id, {"name": "Новая"})
        session.commit()
        iid = integration.id
    before = client.get(f"/api/v1/integrations/{iid}", headers=api).get_json()["webhook_url"]
    body = client.post(f"/api/v1/integrations/{iid}/webhook/rotate", headers=api).get_json()
    assert body["webhook_url"] != before and body["connected"] is False and body["amocrm_error"] is None


def test_another_account_cannot_rotate(app, client, api, services):
    from core.access.accounts import create_account

    with services.session_factory() as session:
        other = create_account(session, "Чужой")
        integration = create_integration(session, services, other.id, {"name": "Чужая"})
        session.commit()
        iid = integration.id
    assert client.post(f"/api/v1/integrations/{iid}/webhook/rotate", headers=api).status_code == 404


def test_admin_button_rotates_with_confirmation_and_csrf(app, client, api, amo, account_id):
    setup = connected_integration(client, api, amo)
    make_user(app, account_id=account_id)
    admin = app.test_client()
    login(admin)
    page = admin.get(f"/admin/integrations/{setup.integration_id}/").get_data(as_text=True)
    assert 'data-testid="rotate-webhook"' in page and "data-confirm=" in page.split('data-testid="rotate-webhook"')[1][:400]

    url = f"/admin/integrations/{setup.integration_id}/webhook/rotate"
    assert admin.post(url).status_code == 400  # no CSRF token: refused, nothing rotated
    assert client.post(_path(setup.webhook_url), data=_close_body(4), content_type=FORM).status_code == 200

    done = admin.post(url, data={"csrf_token": csrf_from(page)}, follow_redirects=True)
    assert "Новый Webhook url выпущен и зарегистрирован в amoCRM" in text(done)
    assert client.post(_path(setup.webhook_url), data=_close_body(5), content_type=FORM).status_code == 404
    new = client.get(f"/api/v1/integrations/{setup.integration_id}", headers=api).get_json()["webhook_url"]
    assert new in text(done) and _destinations(amo) == [new]


def test_admin_shows_that_amocrm_must_be_told_again(app, client, api, amo, account_id):
    setup = connected_integration(client, api, amo)
    make_user(app, account_id=account_id)
    admin = app.test_client()
    login(admin)
    page = admin.get(f"/admin/integrations/{setup.integration_id}/").get_data(as_text=True)
    amo.configure(blocked=True)
    done = text(admin.post(f"/admin/integrations/{setup.integration_id}/webhook/rotate",
                           data={"csrf_token": csrf_from(page)}, follow_redirects=True))
    assert "amoCRM его не принял" in done and "Нажмите «Зарегистрировать webhook в amoCRM» ещё раз" in done


@pytest.mark.parametrize("slash", ["", "/"])
def test_the_token_is_redacted_in_gunicorns_error_log_and_access_log(slash):
    import datetime
    import io
    import runpy
    from types import SimpleNamespace

    from gunicorn.config import Config

    from core.platform.settings import PROJECT_ROOT

    token = "tok-SECRET-value"
    path = f"/webhooks/amocrm/{token}{slash}"
    logger = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))["RedactingLogger"](Config())
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.error_log.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"boom while handling {path}")
        except RuntimeError:
            logger.exception("Error handling request %s", path)  # what gunicorn's worker logs
    finally:
        logger.error_log.removeHandler(handler)
    logged = stream.getvalue()
    assert "Error handling request /webhooks/amocrm/***" in logged and "boom while handling /webhooks/amocrm/***" in logged
    assert token not in logged

    atoms = logger.atoms(SimpleNamespace(status="200 OK", sent=1, headers=[], response_length=1),
                         SimpleNamespace(method="POST", version=(1, 1), headers=[]),
                         {"REQUEST_METHOD": "POST", "RAW_URI": path, "PATH_INFO": path, "QUERY_STRING": "",
                          "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1"}, datetime.timedelta(seconds=0.01))
    assert token not in atoms["r"] + atoms["U"] and atoms["U"] == f"/webhooks/amocrm/***{slash}"
