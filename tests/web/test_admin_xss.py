"""Values from amoCRM (a contact's name, e-mail, talk origin, custom-field value) and names typed in the
admin stay text on every screen: the raw markup never reaches the HTML, its escaped form does."""
from __future__ import annotations

import pytest
from markupsafe import escape

from tests.helpers.admin_helpers import signed_in, text
from tests.helpers.hostile_data import IMG, PAYLOADS, SCRIPT, admin_pages, seed_hostile


@pytest.fixture
def hostile(app, services, account_id):
    with services.session_factory() as session:
        data = seed_hostile(session, services, account_id)
        session.commit()
    return data


@pytest.mark.parametrize("page", ["dashboard", "report", "events", "event", "integration"])
def test_hostile_values_are_escaped(app, hostile, page):
    admin = signed_in(app)
    response = admin.get(admin_pages(hostile)[page])
    assert response.status_code == 200
    body = text(response)
    for payload in PAYLOADS:
        assert payload not in body, f"{page}: {payload!r} reached the HTML unescaped"
    assert "<img src=x" not in body and "<script>window.__xss" not in body


def test_the_report_shows_the_escaped_values(app, hostile):
    body = text(signed_in(app).get("/admin/requests/"))
    # Jinja escapes < > & " ' — the escaped name is on the page, so the value is shown, not dropped.
    assert str(escape("Анна " + IMG)) in body
    assert "&lt;/script&gt;&lt;script&gt;window.__xss=2&lt;/script&gt;" in body


def test_the_integration_page_shows_the_origin_and_field_name_as_text(app, hostile):
    body = text(signed_in(app).get(f"/admin/integrations/{hostile.integration_id}/"))
    assert "&lt;/script&gt;" in body  # the field name and the origin seen, escaped
    assert SCRIPT not in body
