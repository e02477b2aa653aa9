"""The integration setup screen driven as the admin does: «Подключить» through the sandbox's consent
screen back to our callback, and the page of one integration."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import sqlalchemy as sa

from core.models import Integration
from tests.helpers import http as loopback  # loopback only: never through a proxy
from tests.helpers.admin_helpers import csrf_from, post_form, text


def integration(app, integration_id=None) -> Integration:
    with app.extensions["chatsource.services"].session_factory() as session:
        query = sa.select(Integration).order_by(Integration.id.desc())
        row = session.get(Integration, integration_id) if integration_id else session.scalar(query.limit(1))
        list(row.mappings)  # loaded while the session is open
        return row


def new_integration(admin, amo=None, name="Основной amoCRM"):
    """Step 1 on the «Подключить учетную запись» page; returns the response to «Подключить»."""
    data = {"name": name}
    if amo is not None:
        data.update(amocrm_url=amo.url, token_url=f"{amo.url}/oauth2/access_token")
    else:
        page = text(admin.get("/admin/integrations/new"))
        data.update(amocrm_url=re.search(r'id="amocrm_url" name="amocrm_url" value="([^"]+)"', page).group(1),
                    token_url=re.search(r'id="token_url" name="token_url" value="([^"]+)"', page).group(1))
    return post_form(admin, "/admin/integrations/new", data)


def through_amocrm(admin, authorize_url: str, amo_allows=True):
    """amoCRM's consent screen (the sandbox), then its redirect back to our callback in the admin's browser."""
    consent = loopback.get(authorize_url, allow_redirects=False, timeout=10)
    if consent.status_code == 200:  # the consent page: press «Разрешить» / «Отказать»
        fields = dict(re.findall(r'name="(client_id|state|mode)" value="([^"]*)"', consent.text))
        consent = loopback.post(urlsplit(authorize_url)._replace(path="/oauth", query="").geturl(),
                                data={**fields, "decision": "allow" if amo_allows else "deny"}, allow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text[:300]
    back = urlsplit(consent.headers["Location"])
    return admin.get(f"{back.path}?{back.query}")


def connected(admin, amo):
    response = new_integration(admin, amo)
    assert response.status_code == 302 and response.headers["Location"].startswith(amo.url + "/oauth?")
    callback = through_amocrm(admin, response.headers["Location"])
    assert callback.status_code == 200 and 'data-result="connected"' in text(callback)
    return integration(admin.application)


def setup_url(row) -> str:
    return f"/admin/integrations/{row.id}/"


def save(admin, row, **fields):
    page = text(admin.get(setup_url(row)))
    data = {"csrf_token": csrf_from(page), "name": row.name, "amocrm_url": row.amocrm_url, "token_url": row.token_url,
            "client_id": row.client_id, "traffic_type": "campaign"}
    for origin in re.findall(r'name="map_origin_(\d+)" value="([^"]+)"', page):
        data[f"map_origin_{origin[0]}"] = origin[1]
    data.update({k: v for k, v in fields.items() if v is not None})
    return admin.post(setup_url(row), data=data)
