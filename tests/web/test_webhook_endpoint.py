"""The webhook endpoint as amoCRM (and an attacker, and a broken network) meets it."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from core.integrations import settings as integrations
from core.models import WebhookEvent
from sandbox.webhook_format import encode_talk_body

ACCOUNT = {"id": 1, "subdomain": "sub", "_links": {"self": "https://sub.amocrm.ru"}}
FORM = "application/x-www-form-urlencoded"


def talk(talk_id, closed=True):
    return dict(talk_id=talk_id, created_at=1726581000, updated_at=1726581548, rate=0, contact_id=5, chat_id="c",
                entity_id=6, entity_type="lead", is_in_work=not closed, is_read=True, origin="telegram")


def make_integration(services, account_id, active=True):
    with services.session_factory() as session:
        integration = integrations.create_integration(session, services, account_id, {"name": "amo"})
        integration.is_active = active
        integration.status = "connected"
        session.commit()
        return integration.id, integrations.webhook_url(services, integration)


def path_of(url):
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def stored(services):
    with services.session_factory() as session:
        return list(session.execute(sa.select(WebhookEvent.talk_id, WebhookEvent.status).order_by(WebhookEvent.talk_id)))


def test_close_event_is_stored_before_200(client, services, account_id):
    _, url = make_integration(services, account_id)
    body = encode_talk_body("update", [talk(1), talk(2, closed=False), talk(3)], ACCOUNT)
    response = client.post(path_of(url), data=body, content_type=FORM)
    assert response.status_code == 200
    assert response.get_json() == {"stored": 3, "duplicates": 0, "queued": 2}
    assert stored(services) == [(1, "received"), (2, "skipped"), (3, "received")]


def test_the_same_delivery_twice_is_stored_once(client, services, account_id):
    _, url = make_integration(services, account_id)
    body = encode_talk_body("update", [talk(1)], ACCOUNT)
    assert client.post(path_of(url), data=body, content_type=FORM).get_json()["stored"] == 1
    again = client.post(path_of(url), data=body, content_type=FORM)
    assert again.status_code == 200 and again.get_json() == {"stored": 0, "duplicates": 1, "queued": 0}
    assert len(stored(services)) == 1


def test_unknown_token_is_404_and_stores_nothing(client, services, account_id):
    make_integration(services, account_id)
    response = client.post("/webhooks/amocrm/not-a-real-token", data=encode_talk_body("update", [talk(1)], ACCOUNT), content_type=FORM)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_webhook"
    assert stored(services) == []


def test_malformed_bodies_are_400_with_a_reason(client, services, account_id):
    _, url = make_integration(services, account_id)
    for body, ctype in [("", FORM), ("talk[update][0][talk_id]=abc", FORM), ("talk[update][0][talk_id=1", FORM),
                        ('{"talk": 1}', "application/json"), (b"talk[update][0][talk_id]=\xff\xfe", FORM)]:
        response = client.post(path_of(url), data=body, content_type=ctype)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["message"]
    assert stored(services) == []


def test_oversized_body_is_413(client, services, account_id):
    _, url = make_integration(services, account_id)
    body = "talk[update][0][talk_id]=1&talk[update][0][chat_id]=" + "x" * (services.settings.webhook_max_bytes + 10)
    response = client.post(path_of(url), data=body, content_type=FORM)
    assert response.status_code == 413
    assert stored(services) == []


def test_inactive_integration_answers_200_and_keeps_events_as_ignored(client, services, account_id):
    _, url = make_integration(services, account_id, active=False)
    response = client.post(path_of(url), data=encode_talk_body("update", [talk(7)], ACCOUNT), content_type=FORM)
    assert response.status_code == 200 and response.get_json()["queued"] == 0
    assert stored(services) == [(7, "ignored")]


def test_database_down_is_503_so_amocrm_retries(client, services, account_id, monkeypatch):
    _, url = make_integration(services, account_id)

    def down(*args, **kwargs):
        raise OperationalError("select", {}, Exception("connection refused"))

    monkeypatch.setattr("web.webhooks.store_webhook", down)
    response = client.post(path_of(url), data=encode_talk_body("update", [talk(1)], ACCOUNT), content_type=FORM)
    assert response.status_code == 503
    monkeypatch.setattr("web.webhooks.find_integration_by_webhook_token", down)
    assert client.post(path_of(url), data="x=1", content_type=FORM).status_code == 503


def test_a_large_batch_within_the_limit_is_accepted(client, services, account_id):
    _, url = make_integration(services, account_id)
    body = encode_talk_body("update", [talk(i) for i in range(1, 201)], ACCOUNT)
    response = client.post(path_of(url), data=body, content_type=FORM)
    assert response.status_code == 200 and response.get_json()["stored"] == 200


def test_webhook_token_never_reaches_the_log(client, services, account_id, caplog):
    import logging

    from web import RedactWebhookTokens

    _, url = make_integration(services, account_id)
    token = url.rstrip("/").rsplit("/", 1)[1]
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"POST %s HTTP/1.1" 200', (f"/webhooks/amocrm/{token}",), None)
    RedactWebhookTokens().filter(record)
    assert token not in record.getMessage() and "/webhooks/amocrm/***" in record.getMessage()
