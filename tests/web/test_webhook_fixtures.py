"""Bodies as live amoCRM and Kommo accounts send them (tests/fixtures/amocrm_webhooks/), posted to the
webhook url in both forms: with the trailing slash we show (Kommo's form requires it) and without it
(hooks registered before). A hook ticked for more events than ours must get a 2xx for every body."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from core.amocrm.client import AmoCrmClient
from core.integrations import settings as integrations
from core.models import Integration, WebhookEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "amocrm_webhooks"
FORM = "application/x-www-form-urlencoded"

# file → the (talk_id, status) rows the body must leave in the inbox
EXPECTED = {
    "talk_update_closed.form": [(191, "received")],
    "talk_add_open.form": [(192, "skipped")],
    "kommo_talk_update_closed.form": [(5012, "received")],
    "message_add_text.form": [],
    "message_add_voice.form": [],
    "leads_update.form": [],
    "contacts_update_custom_fields.form": [],
    "unsorted_add.form": [],
}


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_every_fixture_is_listed():
    assert sorted(p.name for p in FIXTURES.glob("*.form")) == sorted(EXPECTED)


@pytest.fixture
def hook(services, account_id):
    with services.session_factory() as session:
        integration = integrations.create_integration(session, services, account_id, {"name": "amo"})
        integration.is_active = True
        integration.status = "connected"
        integration.api_base_url = "https://mykommo.kommo.com"
        session.commit()
        url = integrations.webhook_url(services, integration)
    return integration.id, "/" + url.split("://", 1)[1].split("/", 1)[1]


def inbox(services):
    with services.session_factory() as session:
        return list(session.execute(sa.select(WebhookEvent.talk_id, WebhookEvent.status).order_by(WebhookEvent.id)))


def test_the_url_we_show_ends_with_a_slash(hook):
    _, path = hook
    assert path.startswith("/webhooks/amocrm/") and path.endswith("/") and not path.endswith("//")


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("with_slash", [True, False], ids=["with-slash", "without-slash"])
def test_live_bodies_get_2xx_on_both_url_forms(client, services, hook, name, with_slash):
    _, path = hook
    path = path if with_slash else path.rstrip("/")
    response = client.post(path, data=body(name), content_type=FORM)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert inbox(services) == EXPECTED[name]
    # the same delivery again (amoCRM retries on a lost answer) stores nothing more
    assert client.post(path, data=body(name), content_type=FORM).status_code == 200
    assert inbox(services) == EXPECTED[name]


def test_both_forms_reach_the_same_integration_without_a_redirect(client, services, hook):
    _, path = hook
    first = client.post(path, data=body("talk_update_closed.form"), content_type=FORM)
    second = client.post(path.rstrip("/"), data=body("talk_update_closed.form"), content_type=FORM)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.get_json() == {"stored": 0, "duplicates": 1, "queued": 0}


def test_an_unknown_token_is_404_in_both_forms(client, hook):
    for path in ("/webhooks/amocrm/not-a-token/", "/webhooks/amocrm/not-a-token"):
        assert client.post(path, data=body("talk_update_closed.form"), content_type=FORM).status_code == 404


def test_a_kommo_body_changes_nothing_about_where_we_call(client, services, hook):
    """Kommo's `account[_links][self]` says …amocrm.com while the API answers at …kommo.com."""
    integration_id, path = hook
    assert client.post(path, data=body("kommo_talk_update_closed.form"), content_type=FORM).status_code == 200
    with services.session_factory() as session:
        row = session.get(Integration, integration_id)
        assert (row.api_base_url, row.amocrm_url, row.amo_subdomain) == ("https://mykommo.kommo.com", integrations.DEFAULT_AMOCRM_URL, None)
    assert AmoCrmClient(services, integration_id).base_url == "https://mykommo.kommo.com"
