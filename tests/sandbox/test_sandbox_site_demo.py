"""The sandbox's demo client site (/site/) and its stand-in for amoCRM's button.js."""
from __future__ import annotations

from sandbox.app import create_sandbox_app


def test_the_demo_site_carries_the_pasted_snippets_below_the_buttons_embed_code(amo, http):
    empty = http.get(f"{amo.url}/site/", timeout=10)
    assert empty.status_code == 200 and "Коды Chatsource ещё не установлены" in empty.text
    assert "w.amoSocialButton = w.amoSocialButton ||" in empty.text and "'/js/button.js'" in empty.text

    installed = http.post(f"{amo.url}/_sandbox/site", timeout=10,
                          json={"tracking_code": "<script>window.__tracking = 1;</script>",
                                "site_script": "<script>window.__site = 1;</script>"})
    assert installed.status_code == 200 and installed.json()["site_script"].startswith("<script>")
    page = http.get(f"{amo.url}/site/", timeout=10).text
    head, body = page.split("</head>", 1)
    assert "<script>window.__tracking = 1;</script>" in head  # the main code in <head>, as pasted
    # The script for your site comes after the button's embed code, at the bottom of the page.
    assert body.index("'/js/button.js'") < body.index("<script>window.__site = 1;</script>")

    # The form does the same for a person; it posts to a loopback-only path.
    form = http.post(f"{amo.url}/_sandbox/ui/site", data={"tracking_code": "", "site_script": ""},
                     allow_redirects=False, timeout=10)
    assert form.status_code == 303 and "__site" not in http.get(f"{amo.url}/site/", timeout=10).text


def test_button_js_offers_the_messengers_and_fires_onbuttonclick(amo, http):
    script = http.get(f"{amo.url}/js/button.js", timeout=10)
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("application/javascript")
    for code in ("'onButtonClick', s.service, s.link", "service: 'telegram'", "service: 'whatsapp'", "service: 'livechat'",
                 "'/_sandbox/chats'"):
        assert code in script.text, code


def test_the_demo_site_answers_loopback_clients_only():
    app = create_sandbox_app()
    client = app.test_client()
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/site/", environ_overrides=remote).status_code == 403
    assert client.post("/_sandbox/site", json={"site_script": "x"}, environ_overrides=remote).status_code == 403
    assert client.get("/site/", environ_overrides={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
