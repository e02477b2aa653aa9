"""Hostile values as amoCRM could hand them to us (a contact's name, e-mail, a talk origin, a custom-field
value, names an admin typed): every screen must show them as text. Shared by the HTML-level test
(tests/web/test_admin_xss.py) and the browser-level one (tests/browser/test_xss_browser.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from core.platform.db import utcnow
from core.tracking import catalog
from tests.helpers.report_data import add_event, add_request, seed_catalog

# Each sets a flag when it runs, so a browser test can tell "shown as text" from "executed".
IMG = '"><img src=x onerror="window.__xss=1">'
SCRIPT = "</script><script>window.__xss=2</script>"
ATTR = "' onmouseover='window.__xss=3' x='"
PAYLOADS = (IMG, SCRIPT, ATTR)


@dataclass
class Hostile:
    integration_id: int
    request_id: int
    event_id: int


def seed_hostile(session, services, account_id: int) -> Hostile:
    cat = seed_catalog(session, services, account_id)
    campaign = catalog.create_campaign(session, account_id, "РК " + IMG, cat.site_id)
    from core.models import Integration

    integration = session.get(Integration, cat.integration_id)
    integration.session_field_name = "Поле " + SCRIPT
    now = utcnow()
    request = add_request(
        session, account_id, cat.integration_id, now - timedelta(hours=1),
        contact_name="Анна " + IMG, email=f"a{SCRIPT}@example.ru"[:254], origin="tg" + ATTR, channel="other",
        campaign_id=campaign.id, site_id=cat.site_id, attribution="default",
        attribution_reason=f"в поле сессии не число ({SCRIPT!r}). По умолчанию: РК «{IMG}»",
        utm_source=IMG, referrer="https://evil.example/" + ATTR,
    )
    event = add_event(session, account_id, cat.integration_id, status="failed")
    event.error = "AmoApiError: " + IMG
    event.item = {**event.item, "origin": "wa" + SCRIPT, "contact_id": IMG}
    session.flush()
    return Hostile(cat.integration_id, request.id, event.id)


def admin_pages(h: Hostile) -> dict[str, str]:
    """Every screen that shows the values above: the dashboard, Raw data, the events and the integration."""
    return {
        "dashboard": "/admin/",
        "report": "/admin/requests/",
        "events": "/admin/events/",
        "event": f"/admin/events/details/?id={h.event_id}",
        "integration": f"/admin/integrations/{h.integration_id}/",
    }
