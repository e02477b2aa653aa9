import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from core.amocrm.client import AmoCrmClient
from core.amocrm.errors import (
    AmoApiError,
    AmoBlocked,
    AmoTransient,
    HostNotAllowed,
    ReauthRequired,
)
from core.models import Integration
from tests.helpers.amocrm_mock import (  # noqa: F401
    ACCESS,
    BASE,
    CLIENT_SECRET,
    REFRESH,
    TOKEN_URL,
    add_integration,
    client,  # fixtures
    services,
)


class RecordingLimiter:
    """Wraps the real limiter; `waitless=True` swaps waiting for recording (for 429 storms)."""

    def __init__(self, inner=None):
        self.inner = inner
        self.acquired = []
        self.answered_grants = []
        self.penalties = []

    def acquire(self, key, deadline_s=60):
        self.acquired.append(key)
        if self.inner is not None:
            return self.inner.acquire(key, deadline_s)
        return None

    def answered(self, grant):
        self.answered_grants.append(grant)
        if self.inner is not None:
            self.inner.answered(grant)

    def penalise(self, key, seconds):
        self.penalties.append((key, seconds))
        if self.inner is not None:
            self.inner.penalise(key, seconds)


def ids_in(call):
    return [int(v) for v in parse_qs(urlsplit(call.request.url).query).get("filter[id][]", [])]


# -- success paths -----------------------------------------------------------------------------

def test_get_account_sends_auth_headers_and_counts_against_limiter(services, client):
    services.limiter = RecordingLimiter(services.limiter)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", json={"id": 31337, "subdomain": "test"})
        assert client.get_account() == {"id": 31337, "subdomain": "test"}
        headers = rsps.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {ACCESS}"
    assert headers["X-Client-UUID"] == "client-uuid-1"
    assert services.limiter.acquired == ["amo:test.amocrm.ru"]


def test_limiter_key_is_the_account_host_even_when_the_account_id_is_known(services):
    # The token endpoint counts against the same key: one budget per amoCRM account (regression:
    # keying by account id once known split the budget and earned a 429 right after connecting).
    assert AmoCrmClient(services, add_integration(services, amo_account_id=31337)).limiter_key == "amo:test.amocrm.ru"


def test_204_means_empty(client):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/leads/custom_fields", status=204)
        rsps.add(responses.GET, f"{BASE}/api/v4/webhooks", status=204)
        rsps.add(responses.GET, f"{BASE}/api/v4/contacts", status=204)
        assert client.list_custom_fields("leads") == []
        assert client.list_webhooks() == []
        assert client.get_contacts([1, 2, 3]) == {}
        assert client.get_leads([]) == {}  # nothing asked, nothing sent
        assert len(rsps.calls) == 3


def test_get_contacts_batches_600_ids_into_3_calls(client):
    def callback(request):
        ids = [int(v) for v in parse_qs(urlsplit(request.url).query)["filter[id][]"]]
        found = [{"id": i, "name": f"c{i}"} for i in ids if i % 7]  # multiples of 7 "do not exist"
        return 200, {"Content-Type": "application/hal+json"}, json.dumps({"_embedded": {"contacts": found}})

    wanted = list(range(1, 601)) + [5, 10, "15", 600]  # duplicates (and a str id) are dropped
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, f"{BASE}/api/v4/contacts", callback=callback)
        result = client.get_contacts(wanted)
        calls = list(rsps.calls)
    assert len(calls) == 3
    batches = [ids_in(c) for c in calls]
    assert all(len(b) <= 250 for b in batches)
    assert sorted(sum(batches, [])) == list(range(1, 601))
    for c in calls:
        q = parse_qs(urlsplit(c.request.url).query)
        assert q["limit"] == ["250"] and q["page"] == ["1"]
    assert set(result) == {i for i in range(1, 601) if i % 7}
    assert result[8] == {"id": 8, "name": "c8"}
    assert 7 not in result


def test_get_leads_with_contacts_follows_next(client):
    page2 = f"{BASE}/api/v4/leads?filter%5Bid%5D%5B%5D=1&filter%5Bid%5D%5B%5D=2&limit=1&page=2&with=contacts"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/leads", match=[responses.matchers.query_param_matcher(
            {"filter[id][]": ["1", "2"], "with": "contacts", "limit": "250", "page": "1"})],
            json={"_embedded": {"leads": [{"id": 1}]}, "_links": {"next": {"href": page2}}})
        rsps.add(responses.GET, f"{BASE}/api/v4/leads", match=[responses.matchers.query_param_matcher(
            {"filter[id][]": ["1", "2"], "with": "contacts", "limit": "1", "page": "2"})],
            json={"_embedded": {"leads": [{"id": 2, "_embedded": {"contacts": [{"id": 9, "is_main": True}]}}]}})
        leads = client.get_leads([1, 2], with_contacts=True)
    assert set(leads) == {1, 2}
    assert leads[2]["_embedded"]["contacts"][0]["id"] == 9


def test_custom_fields_followed_across_two_pages(client):
    first = [{"id": i, "name": f"f{i}", "type": "text"} for i in range(50)]
    second = [{"id": i, "name": f"f{i}", "type": "tracking_data"} for i in range(50, 62)]
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/contacts/custom_fields",
                 match=[responses.matchers.query_param_matcher({"limit": "250", "page": "1"})],
                 json={"_page": 1, "_embedded": {"custom_fields": first},
                       "_links": {"next": {"href": f"{BASE}/api/v4/contacts/custom_fields?limit=250&page=2"}}})
        rsps.add(responses.GET, f"{BASE}/api/v4/contacts/custom_fields",
                 match=[responses.matchers.query_param_matcher({"limit": "250", "page": "2"})],
                 json={"_page": 2, "_embedded": {"custom_fields": second},
                       "_links": {"self": {"href": "…"}}})
        fields = client.list_custom_fields("contacts")
        assert len(rsps.calls) == 2
    assert [f["id"] for f in fields] == list(range(62))
    with pytest.raises(ValueError):
        client.list_custom_fields("../account")


def test_next_link_to_another_host_is_rerooted_on_our_host(client):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/leads/custom_fields",
                 match=[responses.matchers.query_param_matcher({"limit": "250", "page": "1"})],
                 json={"_embedded": {"custom_fields": [{"id": 1}]},
                       "_links": {"next": {"href": "https://evil.example.com/api/v4/leads/custom_fields?page=2"}}})
        rsps.add(responses.GET, f"{BASE}/api/v4/leads/custom_fields",
                 match=[responses.matchers.query_param_matcher({"page": "2"})],
                 json={"_embedded": {"custom_fields": [{"id": 2}]}})
        assert [f["id"] for f in client.list_custom_fields("leads")] == [1, 2]
        assert all(urlsplit(c.request.url).hostname == "test.amocrm.ru" for c in rsps.calls)


def test_register_webhook_keeps_existing_events(client):
    dest = "https://chatsource.example/webhooks/amocrm/secret-hook-token"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/webhooks",
                 match=[responses.matchers.query_param_matcher({"filter[destination]": dest})],
                 json={"_embedded": {"webhooks": [
                     {"id": 1, "destination": dest, "settings": ["add_lead", "update_talk"], "disabled": False},
                 ]}})
        rsps.add(responses.POST, f"{BASE}/api/v4/webhooks", status=201,
                 json={"id": 1, "destination": dest, "settings": ["add_lead", "add_talk", "update_talk"]})
        result = client.register_webhook(dest, ["update_talk", "add_talk"])
        sent = json.loads(rsps.calls[1].request.body)
    assert sent == {"destination": dest, "settings": ["add_lead", "add_talk", "update_talk"]}
    assert result["id"] == 1


def test_register_webhook_new_destination(client):
    dest = "https://chatsource.example/webhooks/amocrm/t"
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/webhooks", status=204)
        rsps.add(responses.POST, f"{BASE}/api/v4/webhooks", status=201, json={"id": 5})
        client.register_webhook(dest, ["update_talk"])
        assert json.loads(rsps.calls[1].request.body) == {"destination": dest, "settings": ["update_talk"]}


def test_get_talk(client):
    talk = {"talk_id": 191, "is_in_work": False, "origin": "telegram"}
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/talks/191", json=talk)
        rsps.add(responses.GET, f"{BASE}/api/v4/talks/404", status=404,
                 json={"title": "Not Found", "status": 404})
        assert client.get_talk(191) == talk
        assert client.get_talk(404) is None


# -- 429 -------------------------------------------------------------------------------------------

def test_429_with_html_body_honours_retry_after_then_succeeds(services, client):
    recorder = RecordingLimiter(services.limiter)  # the real (fakeredis) limiter does the waiting
    services.limiter = recorder
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", status=429,
                 body="<html><body>Too Many Requests</body></html>",
                 headers={"Retry-After": "1", "Content-Type": "text/html"})
        rsps.add(responses.GET, f"{BASE}/api/v4/account", json={"id": 31337})
        started = time.monotonic()
        assert client.get_account() == {"id": 31337}
        elapsed = time.monotonic() - started
        assert len(rsps.calls) == 2
    assert recorder.penalties == [("amo:test.amocrm.ru", 1.0)]
    assert elapsed >= 0.9  # the second request waited for Retry-After


def test_429_json_retry_after_too_long_gives_up_at_once(services, client):
    services.limiter = RecordingLimiter()
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", status=429,
                 json={"title": "Too Many Requests", "status": 429, "retry_after": 300})
        with pytest.raises(AmoTransient) as info:
            client.get_account()
        assert len(rsps.calls) == 1
    assert info.value.retry_after == 300
    assert services.limiter.penalties == [("amo:test.amocrm.ru", 300.0)]


def test_429_storm_becomes_transient_after_3_tries(services, client):
    services.limiter = RecordingLimiter()  # no real waiting
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", status=429, body=b"\xff\xfe not json at all")
        with pytest.raises(AmoTransient) as info:
            client.get_account()
        assert len(rsps.calls) == 3
    assert info.value.status == 429
    assert len(services.limiter.penalties) == 3
    assert all(key == "amo:test.amocrm.ru" and seconds > 0 for key, seconds in services.limiter.penalties)


# -- 401 -------------------------------------------------------------------------------------------

def test_401_refreshes_once_then_succeeds(services, client):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", status=401,
                 json={"title": "Unauthorized", "status": 401})
        rsps.add(responses.POST, TOKEN_URL, json={
            "token_type": "Bearer", "expires_in": 86400, "access_token": "access-NEW", "refresh_token": "refresh-NEW",
        })
        rsps.add(responses.GET, f"{BASE}/api/v4/account", json={"id": 31337})
        assert client.get_account() == {"id": 31337}
        calls = [(c.request.method, urlsplit(c.request.url).path) for c in rsps.calls]
        second_auth = rsps.calls[2].request.headers["Authorization"]
        refresh_body = json.loads(rsps.calls[1].request.body)
    assert calls == [("GET", "/api/v4/account"), ("POST", "/oauth2/access_token"), ("GET", "/api/v4/account")]
    assert second_auth == "Bearer access-NEW"
    assert refresh_body["refresh_token"] == REFRESH
    with services.session_factory() as s:
        row = s.get(Integration, client.integration_id)
        assert row.token_version == 2 and row.status == "connected"
        assert services.secrets.decrypt(row.refresh_token_enc) == "refresh-NEW"


def test_401_twice_marks_needs_reauth(services, client):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", status=401, json={"title": "Unauthorized"})
        rsps.add(responses.POST, TOKEN_URL, json={
            "token_type": "Bearer", "expires_in": 86400, "access_token": "access-NEW", "refresh_token": "refresh-NEW",
        })
        with pytest.raises(ReauthRequired):
            client.get_account()
        assert [c.request.method for c in rsps.calls] == ["GET", "POST", "GET"]
    with services.session_factory() as s:
        row = s.get(Integration, client.integration_id)
        assert row.status == "needs_reauth"
        assert "401" in row.last_error
    # Parked: nothing more is sent until the integration is reconnected.
    with responses.RequestsMock() as rsps:
        with pytest.raises(ReauthRequired):
            client.get_account()
        assert len(rsps.calls) == 0


def test_expired_token_is_refreshed_before_the_call(services):
    client = AmoCrmClient(services, add_integration(services, expires_in=30))
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, TOKEN_URL, json={"expires_in": 86400, "access_token": "A2", "refresh_token": "R2"})
        rsps.add(responses.GET, f"{BASE}/api/v4/account", json={"id": 1})
        client.get_account()
        assert rsps.calls[1].request.headers["Authorization"] == "Bearer A2"


# -- failures --------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_transient(client, status):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", status=status, json={"trace_id": "abc"})
        with pytest.raises(AmoTransient) as info:
            client.get_account()
        assert len(rsps.calls) == 1  # no retry inside: the worker backs off
    assert info.value.status == status


@pytest.mark.parametrize("exc", [requests.ReadTimeout("slow"), requests.ConnectTimeout("slow"),
                                 requests.ConnectionError("refused")])
def test_network_errors_are_transient(client, exc):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", body=exc)
        with pytest.raises(AmoTransient):
            client.get_account()


@pytest.mark.parametrize("exc", [None, requests.ReadTimeout("slow"), requests.ConnectionError("reset")])
def test_every_call_re_stamps_its_rate_limit_slot_when_it_ends(services, client, exc):
    # amoCRM counts a call on arrival, which may be long after our grant: its slot counts from the end of
    # the call, answered or not (a timed-out call may well have arrived). core.platform.ratelimit.
    services.limiter = RecordingLimiter(services.limiter)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", **({"json": {}} if exc is None else {"body": exc}))
        if exc is None:
            client.get_account()
        else:
            with pytest.raises(AmoTransient):
                client.get_account()
    [grant] = services.limiter.answered_grants
    assert grant.key == "amo:test.amocrm.ru"


def test_timeout_is_passed(services, client):
    seen = {}
    original = services.http.request

    def spy(*args, **kwargs):
        seen.update(timeout=kwargs.get("timeout"), allow_redirects=kwargs.get("allow_redirects"))
        return original(*args, **kwargs)

    services.http.request = spy
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", json={})
        client.get_account()
    assert seen == {"timeout": services.settings.amocrm_timeout_seconds, "allow_redirects": False}


def test_403_html_is_blocked_and_403_json_is_api_error(client):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", status=403,
                 body="<!DOCTYPE html><html>Доступ заблокирован</html>", content_type="text/html")
        with pytest.raises(AmoBlocked):
            client.get_account()
        rsps.replace(responses.GET, f"{BASE}/api/v4/account", status=403,
                     json={"title": "Forbidden", "detail": "IP not in whitelist", "status": 403})
        with pytest.raises(AmoApiError) as info:
            client.get_account()
    assert info.value.status == 403 and info.value.detail == "IP not in whitelist"


def test_other_4xx_is_api_error_with_problem_json(client):
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/talks/5", status=400,
                 headers={"X-Request-Id": "req-400"}, content_type="application/problem+json",
                 body=json.dumps({"title": "Bad Request", "status": 400, "detail": "Request validation failed",
                                  "validation-errors": [{"request_id": "0", "errors": [
                                      {"code": "NotSupportedChoice", "path": "id", "detail": "bad id"}]}]}))
        rsps.add(responses.GET, f"{BASE}/api/v4/talks/6", status=402, body="Payment required, not json")
        with pytest.raises(AmoApiError) as info:
            client.get_talk(5)
        with pytest.raises(AmoApiError) as info402:
            client.get_talk(6)
    err = info.value
    assert (err.status, err.title, err.request_id) == (400, "Bad Request", "req-400")
    assert "bad id" in err.detail and "req-400" in str(err)
    assert info402.value.status == 402


# -- where requests may go ---------------------------------------------------------------------------

def test_host_outside_allowlist_is_never_contacted(services):
    client = AmoCrmClient(services, add_integration(services, api_base_url="https://evil.example.com"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, "https://evil.example.com/api/v4/account", json={})
        rsps.add(responses.POST, "https://evil.example.com/oauth2/access_token", json={})
        with pytest.raises(HostNotAllowed):
            client.get_account()
        with pytest.raises(HostNotAllowed):
            client.get_contacts([1])
        assert len(rsps.calls) == 0


def test_plain_http_to_non_loopback_refused(services):
    client = AmoCrmClient(services, add_integration(services, api_base_url="http://test.amocrm.ru"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, "http://test.amocrm.ru/api/v4/account", json={})
        with pytest.raises(HostNotAllowed, match="http"):
            client.get_account()
        assert len(rsps.calls) == 0


def test_plain_http_to_allowed_loopback_sandbox_works(services):
    client = AmoCrmClient(services, add_integration(services, api_base_url="http://127.0.0.1:5001"))
    with responses.RequestsMock() as rsps:
        rsps.add(responses.GET, "http://127.0.0.1:5001/api/v4/account", json={"id": 1})
        assert client.get_account() == {"id": 1}


# -- logging -----------------------------------------------------------------------------------------

def test_request_id_is_logged_and_tokens_never_are(services, client, caplog):
    with caplog.at_level(logging.DEBUG), responses.RequestsMock() as rsps:
        rsps.add(responses.GET, f"{BASE}/api/v4/account", status=401, headers={"X-Request-Id": "rid-401"})
        rsps.add(responses.POST, TOKEN_URL, headers={"X-Request-Id": "rid-oauth"}, json={
            "expires_in": 86400, "access_token": "access-token-SECRET-1", "refresh_token": "refresh-token-SECRET-1"})
        rsps.add(responses.GET, f"{BASE}/api/v4/account", headers={"X-Request-Id": "rid-200"}, json={"id": 1})
        client.get_account()
    text = caplog.text
    for rid in ("rid-401", "rid-oauth", "rid-200"):
        assert rid in text
    assert "GET /api/v4/account -> 200" in text
    for secret in (ACCESS, REFRESH, CLIENT_SECRET, "access-token-SECRET-1", "refresh-token-SECRET-1", "SECRET"):
        assert secret not in text
    info_records = [r for r in caplog.records if r.name.startswith("chatsource.amocrm") and r.levelno == logging.INFO]
    assert len(info_records) >= 3
