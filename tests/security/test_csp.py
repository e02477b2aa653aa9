"""Issue 10 §4: every page we render runs only scripts from our own origin.

An injected `<script>` or `onclick=` (a contact name in Raw data, a campaign name) would run with the
admin's session; a Content-Security-Policy of `script-src 'self'` stops it — provided our own pages have
no inline script left for the policy to break. This crawls every admin page with data on it."""
from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet

from core.access.accounts import ensure_first_account
from core.platform.db import utcnow
from tests.helpers.admin_helpers import signed_in
from tests.helpers.apps import dispose, make_app
from tests.helpers.report_data import add_event, add_request, seed_catalog

EVIL = '<script>alert(1)</script><img src=x onerror=alert(2)>'
_SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)
_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)


def inline_script(page: str) -> list[str]:
    """Executable inline code: <script> without src (JSON data blocks are not executed), on*= attributes,
    and javascript: urls other than Flask-Admin's inert `javascript:void(0)` (the CSP blocks those too)."""
    found = [f"<script{attrs}>" for attrs in _SCRIPT_TAG.findall(page)
             if "src=" not in attrs and 'type="application/json"' not in attrs]
    found += _HANDLER.findall(page)
    found += [m for m in re.findall(r"javascript:[^\"']*", page, re.I) if m != "javascript:void(0)"]
    return found


@pytest.fixture
def seeded(app, services):
    with services.session_factory() as session:
        account_id = ensure_first_account(session).id
        catalog = seed_catalog(session, services, account_id)
        add_event(session, account_id, catalog.integration_id, status="failed")
        add_request(session, account_id, catalog.integration_id, utcnow(), contact_name=EVIL)
        session.commit()
    return catalog


def _admin_pages(app, catalog) -> list[str]:
    fixed = sorted({r.rule for r in app.url_map.iter_rules()
                    if r.rule.startswith("/admin") and "GET" in r.methods and not r.arguments
                    and not r.rule.endswith(("/ajax/lookup/", ".csv"))})
    with_ids = [f"/admin/integrations/{catalog.integration_id}/", f"/admin/sites/edit/?id={catalog.site_id}",
                f"/admin/campaigns/edit/?id={catalog.campaign_id}", f"/admin/sources/edit/?id={catalog.source_id}",
                "/admin/requests/?q=Иван", "/admin/events/?flt0_0=failed"]
    return fixed + with_ids


def test_every_admin_page_has_the_csp_and_no_inline_script(app, seeded):
    client = signed_in(app)
    checked = 0
    for url in _admin_pages(app, seeded):
        response = client.get(url)
        if response.status_code in (301, 302) or response.mimetype != "text/html":
            continue
        assert response.status_code == 200, url
        policy = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0], url
        assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert inline_script(response.get_data(as_text=True)) == [], url
        checked += 1
    assert checked >= 12


def test_an_injected_name_is_escaped_and_could_not_run_anyway(app, seeded):
    page = signed_in(app).get("/admin/requests/").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and EVIL not in page


def test_the_sign_in_and_oauth_result_pages_too(app):
    client = app.test_client()
    login = client.get("/login")
    assert "script-src 'self'" in login.headers["Content-Security-Policy"]
    assert inline_script(login.get_data(as_text=True)) == []
    result = client.get("/oauth/amocrm/callback?code=x&state=forged")
    assert result.mimetype == "text/html" and "script-src 'self'" in result.headers["Content-Security-Policy"]
    body = result.get_data(as_text=True)
    assert inline_script(body) == [] and 'id="cs-oauth-result"' in body and "admin/oauth_result.js" in body


def test_hsts_only_in_production(app, db_url, tmp_path):
    assert "Strict-Transport-Security" not in app.test_client().get("/login").headers
    production = make_app(db_url, tmp_path, env="production", public_url="https://chats.example.com",
                          secret_key="p" * 40, token_encryption_keys=(Fernet.generate_key().decode(),))
    try:
        headers = production.test_client().get("/login", base_url="https://chats.example.com").headers
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    finally:
        dispose(production)
