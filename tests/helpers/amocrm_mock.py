"""A client of one integration against a mocked amoCRM (`responses`): no server, SQLite in a temp file,
fakeredis. Test modules import the fixtures `services` and `client` from here."""
from __future__ import annotations

from datetime import timedelta

import fakeredis
import pytest

from core.amocrm.client import AmoCrmClient
from core.amocrm.oauth import TokenSet
from core.amocrm.tokens import store_new_tokens
from core.models import Account, Integration
from core.platform.db import Base, create_engine, session_factory, utcnow
from core.platform.services import build_services
from core.platform.settings import Settings

BASE = "https://test.amocrm.ru"
TOKEN_URL = f"{BASE}/oauth2/access_token"
ACCESS = "access-token-SECRET-0"
REFRESH = "refresh-token-SECRET-0"
CLIENT_SECRET = "client-secret-SECRET"


@pytest.fixture
def services(tmp_path):
    # A generous limit so tests are not slowed by the limiter (its own tests are elsewhere).
    settings = Settings.from_env(
        {"APP_ENV": "test", "INSTANCE_DIR": str(tmp_path)},
        amocrm_rate_limit=1000, amocrm_rate_window_ms=1000,
        amocrm_allowed_hosts=("*.amocrm.ru", "*.kommo.com", "127.0.0.1"),
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'client.db'}")
    Base.metadata.create_all(engine)
    svc = build_services(settings, session_factory(engine), fakeredis.FakeRedis(server=fakeredis.FakeServer()))
    yield svc
    engine.dispose()


def add_integration(services, api_base_url=BASE, amo_account_id=31337, expires_in=3600, *, access=ACCESS,
                    refresh=REFRESH, token_url=TOKEN_URL, client_secret=CLIENT_SECRET):
    """A connected integration of a new account, its tokens stored as core.amocrm.tokens stores them."""
    with services.session_factory() as s:
        account = Account(name="Acme")
        s.add(account)
        s.flush()
        integration = Integration(
            account_id=account.id, name="amo", amocrm_url=api_base_url, token_url=token_url,
            api_base_url=api_base_url, amo_account_id=amo_account_id, client_id="client-uuid-1",
            client_secret_enc=services.secrets.encrypt(client_secret),
            webhook_token_hash="h" * 64, webhook_token_enc=services.secrets.encrypt("hook"),
        )
        s.add(integration)
        s.flush()
        store_new_tokens(s, integration, TokenSet(access, refresh, utcnow() + timedelta(seconds=expires_in)),
                         services.secrets)
        s.commit()
        return integration.id


@pytest.fixture
def client(services):
    return AmoCrmClient(services, add_integration(services))
