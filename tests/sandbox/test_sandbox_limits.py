"""Rate limit, block, fault knobs and stats (https://developers.kommo.com/docs/limitations)."""

from __future__ import annotations

import time

import pytest
import requests

from tests.helpers.sandbox_helpers import Api, authorize, control, refresh


def _fresh_window() -> None:
    time.sleep(1.02)


@pytest.fixture
def strict_api(amo_strict, http) -> Api:
    api = Api(amo_strict, http, authorize(amo_strict, http))
    amo_strict.state.unblock()  # empties the rate window (the token call is in it)
    amo_strict.state.reset_stats()
    return api


def test_eighth_call_in_a_second_gets_429_with_retry_after(strict_api, http):
    codes = [strict_api.get("/api/v4/account").status_code for _ in range(7)]
    assert codes == [200] * 7
    r = strict_api.get("/api/v4/account")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert r.headers["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert body["title"] == "Too Many Requests" and body["type"] == "https://httpstatus.es/429"
    assert body["status"] == 429 and body["retry_after"] == 1 and body["detail"]
    assert r.headers.get("X-Request-Id")
    stats = control(strict_api.server, http, "/stats", method="GET")
    assert stats["responses_429"] == 1
    assert stats["peak_calls_per_second"] == 8  # accepted or refused
    assert stats["api_calls"] == 8


def test_window_slides_rather_than_resetting_each_second(strict_api):
    assert all(strict_api.get("/api/v4/account").status_code == 200 for _ in range(4))
    time.sleep(0.6)
    assert all(strict_api.get("/api/v4/account").status_code == 200 for _ in range(3))
    time.sleep(0.55)  # the first four left the window; the last three are still in it
    assert all(strict_api.get("/api/v4/account").status_code == 200 for _ in range(4))
    assert strict_api.get("/api/v4/account").status_code == 429


def test_token_endpoint_counts_too(strict_api, http):
    server = strict_api.server
    tokens = strict_api.tokens
    for _ in range(6):
        assert strict_api.get("/api/v4/account").status_code == 200
    r = refresh(server, http, tokens["refresh_token"])
    assert r.status_code == 200
    r = refresh(server, http, r.json()["refresh_token"])
    assert r.status_code == 429
    stats = server.stats()
    assert stats["calls_by_endpoint"]["POST /oauth2/access_token"] == 2
    assert stats["token_refreshes"] == 1


def test_html_429_body_knob(strict_api, http):
    control(strict_api.server, http, "/settings", {"rate_limit_body": "html", "retry_after": 3})
    rs = [strict_api.get("/api/v4/account") for _ in range(8)]
    assert rs[-1].status_code == 429
    assert rs[-1].headers["Retry-After"] == "3"
    assert rs[-1].headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        rs[-1].json()


def test_block_after_repeated_429s(strict_api, http):
    strict_api.server.configure(block_after_429s=2)
    codes = [strict_api.get("/api/v4/account").status_code for _ in range(10)]
    assert codes[:7] == [200] * 7 and codes[7:9] == [429, 429]
    assert codes[9] == 403
    _fresh_window()
    r = strict_api.get("/api/v4/account")
    assert r.status_code == 403 and r.headers["Content-Type"].startswith("text/html")
    control(strict_api.server, http, "/unblock")
    assert strict_api.get("/api/v4/account").status_code == 200


def test_latency_knob(api, http):
    # Bounds of whole seconds, so a loaded machine cannot fail it: with the knob at 2 s an answer takes
    # at least 2 s, and with it off one answer takes less than that.
    control(api.server, http, "/settings", {"latency_ms": 2000})
    started = time.monotonic()
    assert api.get("/api/v4/account").status_code == 200
    assert time.monotonic() - started >= 2.0
    control(api.server, http, "/settings", {"latency_ms": 0})
    started = time.monotonic()
    api.get("/api/v4/account")
    assert time.monotonic() - started < 2.0


def test_error_rate_knob(api):
    api.server.configure(error_rate=1.0)
    r = api.get("/api/v4/account")
    assert r.status_code == 500
    body = r.json()
    assert body["status"] == 500 and body["trace_id"] and r.headers["Content-Type"].startswith("application/problem")
    api.server.configure(error_status=503)
    assert api.get("/api/v4/account").status_code == 503
    api.server.configure(error_rate=0.5, error_status=500, random_seed=7)
    first = [api.get("/api/v4/account").status_code for _ in range(20)]
    api.server.configure(random_seed=7)
    second = [api.get("/api/v4/account").status_code for _ in range(20)]
    assert first == second and 200 in first and 500 in first  # seeded, reproducible


def test_timeout_paths_knob(api):
    api.server.configure(timeout_paths=["/api/v4/talks/*"], hang_ms=1000)
    chat = api.server.create_chat(contact={"name": "T"})
    with pytest.raises(requests.Timeout):
        api.get(f"/api/v4/talks/{chat['talk_id']}", timeout=0.3)
    assert api.get("/api/v4/account", timeout=0.3).status_code == 200


def test_unpaid_account_knob(api):
    api.server.configure(account_unpaid=True)
    r = api.get("/api/v4/account")
    assert r.status_code == 402 and r.json()["detail"] == "Payment required"


def test_stats_count_by_endpoint_and_reset(api, http):
    chat = api.server.create_chat(contact={"name": "S"})
    api.get(f"/api/v4/talks/{chat['talk_id']}")
    api.get(f"/api/v4/talks/{chat['talk_id']}")
    api.get("/api/v4/contacts", params={"filter[id][]": chat["contact_id"]})
    refresh(api.server, http, api.tokens["refresh_token"])
    stats = control(api.server, http, "/stats", method="GET")
    assert stats["calls_by_endpoint"]["GET /api/v4/talks/{id}"] == 2
    assert stats["calls_by_endpoint"]["GET /api/v4/contacts"] == 1
    assert stats["calls_by_endpoint"]["POST /oauth2/access_token"] == 2  # code exchange + refresh
    assert stats["api_calls"] == 5
    assert stats["code_exchanges"] == 1 and stats["token_refreshes"] == 1
    assert stats["peak_calls_per_second"] >= 4
    # control calls are not API calls
    control(api.server, http, "/talks", method="GET")
    assert control(api.server, http, "/stats", method="GET")["api_calls"] == 5
    after = control(api.server, http, "/stats/reset")
    assert after["api_calls"] == 0 and after["peak_calls_per_second"] == 0 and after["calls_by_endpoint"] == {}
