"""OAuth 2.0 of the sandbox (https://www.amocrm.ru/developers/content/oauth/step-by-step)."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

from tests.helpers.sandbox_helpers import CLIENT, authorize, exchange, get_code, refresh

OAUTH_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"


def _assert_oauth_error(r, hint: str) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert body["hint"] == hint
    assert body["type"] == OAUTH_TYPE
    assert body["status"] == 400
    assert body["title"] == "Некорректный запрос"
    assert body["detail"]


def test_consent_page_then_allow_redirects_with_code_referer_state(amo, http):
    amo.configure(auto_approve=False)
    r = http.get(f"{amo.url}/oauth", params={"client_id": CLIENT["client_id"], "state": "abc", "mode": "popup"})
    assert r.status_code == 200
    assert "text/html" in r.headers["Content-Type"]
    page = r.text
    assert amo.state.settings["account_name"] in page
    assert "Chatsource" in page
    assert "Разрешить" in page and "Отказать" in page
    r = http.post(f"{amo.url}/oauth", data={"client_id": CLIENT["client_id"], "state": "abc", "mode": "popup",
                                            "decision": "allow"}, allow_redirects=False)
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert loc.startswith(CLIENT["redirect_uri"] + "?")
    q = parse_qs(urlsplit(loc).query)
    assert set(q) == {"code", "referer", "state", "platform", "client_id"}
    assert q["referer"] == [amo.host]
    assert q["state"] == ["abc"]
    assert q["platform"] == ["1"]
    assert q["client_id"] == [CLIENT["client_id"]]


def test_deny_redirects_with_access_denied(amo, http):
    amo.configure(auto_approve=False)
    r = http.post(f"{amo.url}/oauth", data={"client_id": CLIENT["client_id"], "state": "xyz", "decision": "deny"},
                  allow_redirects=False)
    assert r.status_code == 302
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    assert q == {"error": ["access_denied"], "state": ["xyz"]}


def test_unknown_client_is_an_error_page(amo, http):
    r = http.get(f"{amo.url}/oauth", params={"client_id": "nope", "state": "s"}, allow_redirects=False)
    assert r.status_code == 400
    assert "text/html" in r.headers["Content-Type"]


def test_auto_approve_and_state_only_when_sent(amo, http):
    q = get_code(amo, http, state=None)
    assert "state" not in q and q["code"][0]
    amo.configure(platform=2)
    assert get_code(amo, http)["platform"] == ["2"]


def test_code_exchange_json_and_form(amo, http):
    r = exchange(amo, http, get_code(amo, http)["code"][0])
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert isinstance(body["server_time"], int)
    assert body["access_token"] and body["refresh_token"]
    r2 = exchange(amo, http, get_code(amo, http)["code"][0], as_form=True)
    assert r2.status_code == 200
    assert r2.json()["access_token"] != body["access_token"]
    # the access token is a JWT carrying api_domain = the account host
    payload = r2.json()["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["api_domain"] == amo.host and claims["aud"] == CLIENT["client_id"]
    assert amo.stats()["code_exchanges"] == 2


def test_code_is_single_use(amo, http):
    code = get_code(amo, http)["code"][0]
    assert exchange(amo, http, code).status_code == 200
    _assert_oauth_error(exchange(amo, http, code), "Authorization code has been revoked")


def test_code_expires_after_20_minutes(amo, http):
    code = get_code(amo, http)["code"][0]
    amo.state.advance_clock(20 * 60 + 1)
    _assert_oauth_error(exchange(amo, http, code), "Authorization code has expired")


def test_redirect_uri_must_match_exactly(amo, http):
    code = get_code(amo, http)["code"][0]
    r = http.post(f"{amo.url}/oauth2/access_token", json={
        "client_id": CLIENT["client_id"], "client_secret": CLIENT["client_secret"], "grant_type": "authorization_code",
        "code": code, "redirect_uri": CLIENT["redirect_uri"] + "/"})
    assert r.status_code == 400
    assert exchange(amo, http, code).status_code == 200  # the failed attempt did not burn the code


def test_client_errors(amo, http):
    code = get_code(amo, http)["code"][0]
    r = http.post(f"{amo.url}/oauth2/access_token", json={
        "client_secret": CLIENT["client_secret"], "grant_type": "authorization_code", "code": code,
        "redirect_uri": CLIENT["redirect_uri"]})
    _assert_oauth_error(r, "Check the `client_id` parameter")
    r = http.post(f"{amo.url}/oauth2/access_token", json={
        "client_id": CLIENT["client_id"], "client_secret": "wrong", "grant_type": "authorization_code",
        "code": code, "redirect_uri": CLIENT["redirect_uri"]})
    assert r.status_code == 400
    _assert_oauth_error(exchange(amo, http, "garbage"), "Cannot decrypt the authorization code")


def test_refresh_rotates_and_old_refresh_token_is_rejected(amo, http):
    first = authorize(amo, http)
    r = refresh(amo, http, first["refresh_token"])
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    # RU rule: single use — the old refresh token is dead even though the new one was never used
    _assert_oauth_error(refresh(amo, http, first["refresh_token"]), "Token has been revoked")
    third = refresh(amo, http, second["refresh_token"])
    assert third.status_code == 200
    _assert_oauth_error(refresh(amo, http, second["refresh_token"]), "Token has been revoked")
    api = http.get(f"{amo.url}/api/v4/account", headers={"Authorization": f"Bearer {third.json()['access_token']}"})
    assert api.status_code == 200
    assert amo.stats()["token_refreshes"] == 2


def test_refresh_grace_knob_keeps_old_token_until_new_is_used(amo, http):
    amo.configure(refresh_grace=True)
    t0 = authorize(amo, http)
    r1 = refresh(amo, http, t0["refresh_token"])
    assert r1.status_code == 200
    # a retry with the old token still works (the response may have been lost)
    r2 = refresh(amo, http, t0["refresh_token"])
    assert r2.status_code == 200
    # using the newest token kills its parent and the sibling issued before
    r3 = refresh(amo, http, r2.json()["refresh_token"])
    assert r3.status_code == 200
    _assert_oauth_error(refresh(amo, http, t0["refresh_token"]), "Token has been revoked")
    _assert_oauth_error(refresh(amo, http, r1.json()["refresh_token"]), "Token has been revoked")
    assert refresh(amo, http, r3.json()["refresh_token"]).status_code == 200


def test_revoked_tokens_give_401_and_refresh_400(amo, http):
    tokens = authorize(amo, http)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert http.get(f"{amo.url}/api/v4/account", headers=headers).status_code == 200
    assert http.post(f"{amo.url}/_sandbox/revoke").status_code == 200
    r = http.get(f"{amo.url}/api/v4/account", headers=headers)
    assert r.status_code == 401
    assert r.headers["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert body["title"] == "Unauthorized" and body["type"] == "https://httpstatus.es/401" and body["status"] == 401
    _assert_oauth_error(refresh(amo, http, tokens["refresh_token"]), "Token has been revoked")
    # a new authorization works again
    assert authorize(amo, http)["access_token"]


def test_revoke_via_settings_knob(amo, http):
    tokens = authorize(amo, http)
    assert http.post(f"{amo.url}/_sandbox/settings", json={"revoke": True}).status_code == 200
    r = http.get(f"{amo.url}/api/v4/account", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 401


def test_access_token_expires_then_refresh_works(amo, http):
    amo.configure(access_ttl=60)
    tokens = authorize(amo, http)
    assert tokens["expires_in"] == 60
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    amo.state.advance_clock(61)
    assert http.get(f"{amo.url}/api/v4/account", headers=headers).status_code == 401
    r = refresh(amo, http, tokens["refresh_token"])
    assert r.status_code == 200
    assert http.get(f"{amo.url}/api/v4/account",
                    headers={"Authorization": f"Bearer {r.json()['access_token']}"}).status_code == 200


def test_missing_or_unknown_bearer_is_401(amo, http):
    assert http.get(f"{amo.url}/api/v4/account").status_code == 401
    assert http.get(f"{amo.url}/api/v4/account", headers={"Authorization": "Bearer x.y.z"}).status_code == 401


def test_current_subdomain_endpoint(amo, http):
    tokens = authorize(amo, http)
    r = http.get(f"{amo.url}/oauth2/account/current/subdomain", headers={"X-Refresh-Token": tokens["refresh_token"]})
    assert r.status_code == 200
    assert r.json()["subdomain"] == amo.state.settings["subdomain"]
    assert r.json()["domain"] == amo.host
    assert http.get(f"{amo.url}/oauth2/account/current/subdomain",
                    headers={"X-Refresh-Token": "nope"}).status_code == 401


def test_an_expired_refresh_token_is_401_with_its_hint(amo, http):
    """As a live account answered (undocumented); other refresh errors stay 400."""
    amo.configure(refresh_ttl=60)
    tokens = authorize(amo, http)
    amo.state.advance_clock(61)
    r = refresh(amo, http, tokens["refresh_token"])
    assert r.status_code == 401 and r.json()["hint"] == "Token has expired" and r.json()["status"] == 401
    assert r.json()["title"] == "Некорректный запрос"
    _assert_oauth_error(refresh(amo, http, "not-a-token"), "Cannot decrypt the refresh token")
