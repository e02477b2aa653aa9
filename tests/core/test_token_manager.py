import json
import logging
import threading
import time
from datetime import timedelta

import pytest
import requests
import responses

from core.amocrm.errors import AmoTransient, HostNotAllowed, ReauthRequired
from core.amocrm.oauth import TokenSet, exchange_code, refresh_tokens
from core.amocrm.tokens import TokenManager, cas_store_tokens, store_new_tokens
from core.models import Integration
from core.platform.db import Base, create_engine, session_factory, utcnow
from core.platform.locks import LocalLocks, RedisLocks
from core.platform.services import build_services
from core.platform.settings import Settings
from tests.helpers import amocrm_mock

TOKEN_URL = "https://test.amocrm.ru/oauth2/access_token"
CLIENT_SECRET = "client-secret-value-xyz"


@pytest.fixture
def services(tmp_path, any_redis):
    """On fakeredis, and on the real Redis server on CI: the refresh lock is a Redis lock."""
    settings = Settings.from_env({"APP_ENV": "test", "INSTANCE_DIR": str(tmp_path)}, amocrm_client_id="client-uuid-1")
    engine = create_engine(f"sqlite:///{tmp_path / 'tokens.db'}")
    Base.metadata.create_all(engine)
    redis_client = any_redis
    svc = build_services(settings, session_factory(engine), redis_client)
    yield svc
    engine.dispose()


def add_integration(services, access="access-0", refresh="refresh-0", expires_in=-60, token_url=TOKEN_URL):
    """The shared builder (tests/helpers/amocrm_mock.py), its access token expired unless told."""
    return amocrm_mock.add_integration(services, amo_account_id=None, expires_in=expires_in, access=access,
                                       refresh=refresh, token_url=token_url, client_secret=CLIENT_SECRET)


def row(services, integration_id):
    with services.session_factory() as s:
        return s.get(Integration, integration_id)


class RotatingTokenEndpoint:
    """amoCRM's token endpoint with single-use refresh tokens: a used or unknown token gets 400."""

    def __init__(self, valid="refresh-0", delay=0.0):
        self.valid = {valid}
        self.generation = 0
        self.calls = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, request):
        body = json.loads(request.body)
        time.sleep(self.delay)  # widen the race window
        with self.lock:
            self.calls.append(body)
            token = body.get("refresh_token")
            if body.get("grant_type") != "refresh_token" or token not in self.valid:
                return 400, {"Content-Type": "application/json"}, json.dumps({
                    "hint": "Token has been revoked", "title": "Некорректный запрос", "status": 400,
                    "detail": "В запросе отсутствует ряд параметров или параметры невалидны",
                })
            self.valid.discard(token)
            self.generation += 1
            new_refresh = f"refresh-{self.generation}"
            self.valid.add(new_refresh)
            return 200, {"Content-Type": "application/json"}, json.dumps({
                "token_type": "Bearer", "expires_in": 86400,
                "access_token": f"access-{self.generation}", "refresh_token": new_refresh,
            })


def test_fresh_token_is_used_without_any_request(services):
    iid = add_integration(services, expires_in=3600)
    with responses.RequestsMock() as rsps:
        assert TokenManager(services).access_token(iid) == "access-0"
        assert len(rsps.calls) == 0


def test_token_within_two_minutes_of_expiry_is_refreshed(services):
    iid = add_integration(services, expires_in=100)
    endpoint = RotatingTokenEndpoint()
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, TOKEN_URL, callback=endpoint)
        assert TokenManager(services).access_token(iid) == "access-1"
    sent = endpoint.calls[0]
    assert sent == {
        "client_id": "client-uuid-1", "client_secret": CLIENT_SECRET, "grant_type": "refresh_token",
        "refresh_token": "refresh-0", "redirect_uri": services.redirect_uri,
    }
    r = row(services, iid)
    assert r.token_version == 2
    assert services.secrets.decrypt(r.refresh_token_enc) == "refresh-1"
    assert r.token_expires_at > utcnow() + timedelta(hours=23)
    assert r.token_refreshed_at is not None


@pytest.mark.parametrize("lock_kind", ["local", "redis"])
def test_two_workers_racing_an_expired_token_refresh_once(services, lock_kind):
    if lock_kind == "local":
        services.locks = LocalLocks()
    else:
        services.locks = RedisLocks(services.redis)
    iid = add_integration(services)
    endpoint = RotatingTokenEndpoint(delay=0.2)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def worker():
        manager = TokenManager(services)  # one per worker, as in separate processes
        barrier.wait()
        try:
            results.append(manager.access_token(iid))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, TOKEN_URL, callback=endpoint)
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    assert not errors, errors
    assert len(endpoint.calls) == 1
    assert results == ["access-1", "access-1"]
    r = row(services, iid)
    assert r.status == "connected"
    assert r.token_version == 2
    assert services.secrets.decrypt(r.refresh_token_enc) == "refresh-1"


def test_dead_refresh_token_marks_needs_reauth(services, caplog):
    iid = add_integration(services, refresh="refresh-dead")
    endpoint = RotatingTokenEndpoint(valid="something-else")
    with caplog.at_level(logging.DEBUG), responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, TOKEN_URL, callback=endpoint)
        with pytest.raises(ReauthRequired) as info:
            TokenManager(services).access_token(iid)
    assert len(endpoint.calls) == 2  # retried once with the same token, then gave up
    assert "Token has been revoked" in str(info.value)
    r = row(services, iid)
    assert r.status == "needs_reauth"
    assert "Token has been revoked" in r.last_error
    assert r.last_error_at is not None
    for secret in ("refresh-dead", "access-0", CLIENT_SECRET):
        assert secret not in r.last_error
        assert secret not in str(info.value)
        assert secret not in caplog.text
    # Afterwards nobody hammers amoCRM with the dead token: it fails fast until reconnected.
    with responses.RequestsMock() as rsps:
        with pytest.raises(ReauthRequired):
            TokenManager(services).access_token(iid)
        assert len(rsps.calls) == 0
    # Reconnecting (code exchange → store_new_tokens) clears it.
    with services.session_factory() as s:
        integration = s.get(Integration, iid)
        TokenManager(services).store_new_tokens(
            s, integration, TokenSet("access-new", "refresh-new", utcnow() + timedelta(days=1)))
        s.commit()
    r = row(services, iid)
    assert (r.status, r.last_error, r.token_version) == ("connected", None, 2)
    assert TokenManager(services).access_token(iid) == "access-new"


def test_expired_refresh_token_answered_401_is_terminal_too(services):
    """A live account answered an expired refresh token with HTTP 401, not 400 (undocumented)."""
    iid = add_integration(services, refresh="refresh-old")
    body = json.dumps({"hint": "Token has expired", "title": "Некорректный запрос", "status": 401,
                       "type": "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"})
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, TOKEN_URL, status=401, body=body, content_type="application/problem+json")
        with pytest.raises(ReauthRequired, match="Token has expired"):
            TokenManager(services).access_token(iid)
        assert len(rsps.calls) == 2  # one retry with the same token, then no more
    r = row(services, iid)
    assert r.status == "needs_reauth" and "Token has expired" in r.last_error


def test_rejected_refresh_uses_tokens_rotated_elsewhere(services):
    """amoCRM rejects our refresh token because another writer rotated it meanwhile: use theirs."""
    iid = add_integration(services)

    def callback(request):
        # Someone (e.g. a reconnect) stores a new pair while our request is in flight.
        with services.session_factory() as s:
            integration = s.get(Integration, iid)
            store_new_tokens(s, integration, TokenSet("access-other", "refresh-other",
                                                      utcnow() + timedelta(days=1)), services.secrets)
            s.commit()
        return 400, {}, json.dumps({"hint": "Token has been revoked"})

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, TOKEN_URL, callback=callback)
        assert TokenManager(services).access_token(iid) == "access-other"
        assert len(rsps.calls) == 1
    assert row(services, iid).status == "connected"


def test_transient_refresh_failure_does_not_mark_reauth(services):
    iid = add_integration(services)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, TOKEN_URL, status=502, body="<html>Bad gateway</html>")
        with pytest.raises(AmoTransient):
            TokenManager(services).access_token(iid)
        rsps.replace(responses.POST, TOKEN_URL, body=requests.ConnectionError("refused"))
        with pytest.raises(AmoTransient):
            TokenManager(services).access_token(iid)
    r = row(services, iid)
    assert (r.status, r.token_version) == ("connected", 1)


def test_forced_refresh_after_401_skips_if_someone_already_refreshed(services):
    iid = add_integration(services, expires_in=3600)
    manager = TokenManager(services)
    seen = manager.current(iid)
    endpoint = RotatingTokenEndpoint()
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, TOKEN_URL, callback=endpoint)
        first = manager.current(iid, force_refresh=True, stale_version=seen.version)
        assert (first.token, first.version) == ("access-1", 2)
        # A second worker that also got 401 with the old token finds the row moved on: no new refresh.
        second = manager.current(iid, force_refresh=True, stale_version=seen.version)
        assert (second.token, second.version) == ("access-1", 2)
        assert len(endpoint.calls) == 1


def test_cas_write_with_stale_version_does_not_overwrite(services):
    iid = add_integration(services)
    now = utcnow()
    new = TokenSet("access-A", "refresh-A", now + timedelta(days=1))
    with services.session_factory() as s:
        assert cas_store_tokens(s, iid, 1, new, services.secrets, now) is True
        s.commit()
    stale = TokenSet("access-B", "refresh-B", now + timedelta(days=1))
    with services.session_factory() as s:
        assert cas_store_tokens(s, iid, 1, stale, services.secrets, now) is False
        s.commit()
    r = row(services, iid)
    assert r.token_version == 2
    assert services.secrets.decrypt(r.access_token_enc) == "access-A"
    assert services.secrets.decrypt(r.refresh_token_enc) == "refresh-A"


def test_token_set_repr_hides_tokens():
    ts = TokenSet("secret-access", "secret-refresh", utcnow())
    assert "secret-access" not in repr(ts) and "secret-refresh" not in repr(ts)


# -- oauth endpoint ------------------------------------------------------------------------------

def test_exchange_code(services):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, TOKEN_URL, json={
            "token_type": "Bearer", "expires_in": 3600, "access_token": "a", "refresh_token": "r",
        })
        before = utcnow()
        ts = exchange_code(services, TOKEN_URL, "cid", "csecret", "the-code", "https://app/cb")
        sent = json.loads(rsps.calls[0].request.body)
    assert (ts.access_token, ts.refresh_token) == ("a", "r")
    assert before + timedelta(seconds=3590) < ts.expires_at <= utcnow() + timedelta(seconds=3600)
    assert ts.expires_at.tzinfo is not None
    assert sent == {
        "client_id": "cid", "client_secret": "csecret", "grant_type": "authorization_code",
        "code": "the-code", "redirect_uri": "https://app/cb",
    }


def test_expired_code_carries_hint(services):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, TOKEN_URL, status=400, json={
            "hint": "Authorization code has expired", "title": "Некорректный запрос",
            "type": "https://developers.amocrm.ru/v3/errors/OAuthProblemJson", "status": 400,
        })
        with pytest.raises(ReauthRequired, match="Authorization code has expired") as info:
            exchange_code(services, TOKEN_URL, "cid", "csecret", "the-code", "https://app/cb")
    assert "csecret" not in str(info.value) and "the-code" not in str(info.value)


def test_token_url_outside_allowlist_is_never_contacted(services):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.POST, "https://evil.example.com/oauth2/access_token", json={})
        with pytest.raises(HostNotAllowed):
            refresh_tokens(services, "https://evil.example.com/oauth2/access_token", "cid", "csecret", "r", "u")
        with pytest.raises(HostNotAllowed):
            exchange_code(services, "http://test.amocrm.ru/oauth2/access_token", "cid", "csecret", "c", "u")
        assert len(rsps.calls) == 0


def test_refresh_429_and_5xx_are_transient(services):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, TOKEN_URL, body=requests.Timeout("slow"))
        with pytest.raises(AmoTransient):
            refresh_tokens(services, TOKEN_URL, "cid", "csecret", "r", "u")
        rsps.replace(responses.POST, TOKEN_URL, status=503, body="")
        with pytest.raises(AmoTransient):
            refresh_tokens(services, TOKEN_URL, "cid", "csecret", "r", "u")
        rsps.replace(responses.POST, TOKEN_URL, status=429, body="<html>slow down</html>",
                     headers={"Retry-After": "2"})
        with pytest.raises(AmoTransient) as info:
            refresh_tokens(services, TOKEN_URL, "cid", "csecret", "r", "u")
        assert info.value.retry_after == 2
    # The 429 penalises the host's limiter key for everyone.
    granted, wait = services.limiter.try_acquire("amo:test.amocrm.ru")
    assert not granted and 1 < wait <= 2
