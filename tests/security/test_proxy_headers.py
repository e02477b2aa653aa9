"""Issue 10 §4: X-Forwarded-For chooses the client address only when a trusted proxy sent it.

The address keys the visitor IP hash (and the rate limits); with ProxyFix always on, a bot could
send any X-Forwarded-For and be a new visitor on every hit."""
from __future__ import annotations

import json

import pytest

from core.models import VisitorSession
from core.tracking.sessions import hash_ip
from tests.helpers.apps import api_headers_for, dispose, make_app
from web.proxy import TrustedProxyFix, parse_trusted

SITE_ORIGIN = "https://shop.example.ru"


def _hit_from(app, peer: str, forwarded_for: str) -> str:
    """One page view from `peer` claiming `forwarded_for`; returns the stored ip hash."""
    from core.access.accounts import ensure_first_account

    services = app.extensions["chatsource.services"]
    with services.session_factory() as session:
        account_id = ensure_first_account(session).id
        session.commit()
    client = app.test_client()
    site = client.post("/api/v1/sites", headers=api_headers_for(app, account_id),
                       json={"name": "Магазин", "domain": "shop.example.ru"}).get_json()
    response = client.post(
        "/t/collect", data=json.dumps({"site_key": site["site_key"], "url": "https://shop.example.ru/"}),
        content_type="text/plain", environ_base={"REMOTE_ADDR": peer},
        headers={"Origin": SITE_ORIGIN, "X-Forwarded-For": forwarded_for,
                 "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    with services.session_factory() as session:
        return session.query(VisitorSession).one().ip_hash


@pytest.mark.parametrize("trusted", [None, "10.0.0.0/8"])
def test_a_forged_forwarded_for_is_ignored_from_an_untrusted_peer(db_url, tmp_path, trusted):
    overrides = {"forwarded_allow_ips": (trusted,)} if trusted else {}
    app = make_app(db_url, tmp_path, **overrides)
    try:
        stored = _hit_from(app, "203.0.113.7", "198.51.100.99")
        salt = app.extensions["chatsource.settings"].ip_salt
        assert stored == hash_ip("203.0.113.7", salt) != hash_ip("198.51.100.99", salt)
    finally:
        dispose(app)


def test_the_trusted_proxy_passes_the_client_address_on(db_url, tmp_path):
    app = make_app(db_url, tmp_path, forwarded_allow_ips=("10.0.0.0/8",))
    try:
        stored = _hit_from(app, "10.1.2.3", "198.51.100.99")
        assert stored == hash_ip("198.51.100.99", app.extensions["chatsource.settings"].ip_salt)
    finally:
        dispose(app)


def test_trust_rules():
    plain = TrustedProxyFix(None, parse_trusted([]))
    assert not plain.peer_trusted("127.0.0.1")
    assert TrustedProxyFix(None, parse_trusted(["*"])).peer_trusted("203.0.113.7")
    listed = TrustedProxyFix(None, parse_trusted(["127.0.0.1", "::1", "10.0.0.0/8"]))
    assert listed.peer_trusted("10.200.0.1") and listed.peer_trusted("::1") and not listed.peer_trusted("11.0.0.1")
    assert not listed.peer_trusted("") and not listed.peer_trusted(None)


def test_gunicorn_trusts_no_proxy_by_default(monkeypatch):
    import runpy

    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    conf = runpy.run_path("gunicorn.conf.py")
    assert conf["forwarded_allow_ips"] == ""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    assert runpy.run_path("gunicorn.conf.py")["forwarded_allow_ips"] == "*"


def test_a_bad_forwarded_allow_ips_entry_is_named(tmp_path):
    from core.platform.settings import ConfigError, Settings

    with pytest.raises(ConfigError, match="FORWARDED_ALLOW_IPS: 'proxy.local'"):
        Settings.from_env({"APP_ENV": "development", "INSTANCE_DIR": str(tmp_path), "FORWARDED_ALLOW_IPS": "proxy.local"})
