"""PostgreSQL restarted while amoCRM keeps posting webhooks: 503 while it is down (so amoCRM retries,
and no delivery is acknowledged that was not stored), 200 again once it is back, and every closed
talk recorded exactly once. PostgreSQL here is a private cluster of this test, never the shared one.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from sandbox.webhook_format import encode_talk_body
from tests.helpers import http as loopback  # loopback only: never through a proxy
from tests.helpers.apps import api_headers_for, dispose, drain, make_app
from tests.helpers.databases import migrate
from tests.helpers.fault_helpers import assert_each_closed_talk_recorded_once, delivery_codes, open_and_close, wait_for
from tests.helpers.pipeline_helpers import connected_integration

pytestmark = [pytest.mark.timeout(90), pytest.mark.postgres, pytest.mark.e2e]

ACCOUNT = {"id": 31415926, "subdomain": "sandbox", "_links": {"self": "http://127.0.0.1"}}


class AmoSender(threading.Thread):
    """Posts one closed talk after another, each until it gets a 2xx, as amoCRM retries a delivery."""

    def __init__(self, url: str, first_talk_id: int):
        super().__init__(daemon=True)
        self.url = url
        self.next_talk = first_talk_id
        self.delivered: list[int] = []
        self.codes: Counter = Counter()
        self.stop_event = threading.Event()
        self.http = loopback.loopback_session()
        self.http.trust_env = False

    def run(self) -> None:
        while not self.stop_event.is_set():
            talk = self.next_talk
            body = encode_talk_body("update", [dict(talk_id=talk, created_at=1_763_900_000, updated_at=1_763_900_300,
                                                    contact_id=900_000 + talk, chat_id=f"chat-{talk}", is_in_work=False,
                                                    is_read=True, origin="telegram")], ACCOUNT)
            while True:  # this talk until it is acknowledged
                try:
                    code = self.http.post(self.url, data=body, timeout=10,
                                          headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code
                except requests.RequestException:
                    code = 0
                self.codes[code] += 1
                if 200 <= code < 300:
                    self.delivered.append(talk)
                    break
                time.sleep(0.05)
            self.next_talk += 1
            time.sleep(0.02)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(30)


@pytest.fixture
def pg_app(private_pg, tmp_path, live):
    if not private_pg.running():
        private_pg.start()
    name = f"faults_{int(time.time() * 1000)}"
    url = private_pg.create_database(name)
    migrate(url, tmp_path)
    app = make_app(url, tmp_path, public_url=live.url)
    live.app = app
    yield app
    dispose(app)


def test_postgres_restart_while_webhooks_arrive(pg_app, amo, private_pg):
    from core.access.accounts import ensure_first_account

    services = pg_app.extensions["chatsource.services"]
    with services.session_factory() as session:
        account_id = ensure_first_account(session).id
        session.commit()
    client, api = pg_app.test_client(), api_headers_for(pg_app, account_id)
    setup = connected_integration(client, api, amo)
    before = open_and_close(amo, setup, 3, prefix="До")

    sender = AmoSender(setup.webhook_url, first_talk_id=7_000_000)
    sender.start()
    wait_for(lambda: len(sender.delivered) >= 5, 15, "webhooks to flow")

    private_pg.stop("immediate")
    try:
        wait_for(lambda: sender.codes[503] >= 3, 15, "503 answers while PostgreSQL is down")
        down_health = client.get("/healthz")
        assert down_health.status_code == 503 and down_health.get_json()["db"].startswith("error")
        # A manager closes chats meanwhile: the sandbox's deliveries get 503 as well.
        during = open_and_close(amo, setup, 2, prefix="Во время")
        assert delivery_codes(amo, during) == [503, 503]
    finally:
        private_pg.start()

    delivered_at_restart = len(sender.delivered)
    wait_for(lambda: len(sender.delivered) >= delivered_at_restart + 5, 20, "webhooks to be stored again after the restart")
    sender.stop()
    # amoCRM's retry of the two deliveries it saw fail.
    amo.state.send_talk_events(event="update_talk", talk_ids=during)
    assert delivery_codes(amo, during)[-1] == 200
    assert client.get("/healthz").status_code == 200

    assert set(sender.codes) <= {200, 503}, f"only 200 and 503, never a 500 or a dropped connection: {dict(sender.codes)}"
    drain(pg_app)
    assert_each_closed_talk_recorded_once(services, setup.integration_id, before + during + sender.delivered)
