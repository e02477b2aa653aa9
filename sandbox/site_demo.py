"""The demo client site at ``/site/``: a page of a shop with amoCRM's chat button on it.

The site owner's part is played by pasting Chatsource's two snippets (the main tracking code and the
script for your site) into the form on the page (or ``POST /_sandbox/site`` with JSON); the page then
carries them as a real site would, with the button's embed code and the sandbox's ``/js/button.js``
(site_button.js: the online chat, Telegram and WhatsApp icons and their ``onButtonClick`` callbacks).

The pasted HTML is rendered as it is: this is a loopback-only development page whose whole point is
to run the snippets pasted into it (the form posts to the loopback-only ``/_sandbox`` paths).
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, redirect, render_template_string, request

from .state import SandboxState

BUTTON_JS = Path(__file__).resolve().parent / "site_button.js"
SNIPPETS = ("tracking_code", "site_script")
MAX_SNIPPET = 20_000

# amoCRM's embed code, reduced to what the API relies on: the button object whose setMeta queues
# into .params and the command queue whose calls wait in .q until button.js loads (§6).
EMBED_CODE = """<script>
(function (w, d) {
  w.amo_social_button = w.amo_social_button || {id: 'sandbox', hash: 'sandbox', locale: 'ru', inline: false, params: [],
    setMeta: function (p) { this.params.push(p); }};
  w.amoSocialButton = w.amoSocialButton || function () { (w.amoSocialButton.q = w.amoSocialButton.q || []).push(arguments); };
  var s = d.createElement('script'); s.async = true; s.src = '/js/button.js';
  (d.head || d.documentElement).appendChild(s);
})(window, document);
</script>"""

SITE_PAGE = """<!DOCTYPE html>
<html lang="ru"><head><meta charset="utf-8"><title>Магазин диванов — демо-сайт клиента</title>
{{ snippets.tracking_code|safe }}
<style>body{font-family:Arial,sans-serif;margin:24px;max-width:900px;color:#1f2d3d}
textarea{width:100%;height:90px;font:12px monospace} .muted{color:#8a96a3;font-size:12px}
section{border:1px solid #dde3e9;border-radius:6px;padding:10px 14px;margin:14px 0}</style>
</head><body>
<h1>Магазин диванов</h1>
<p>Демо-сайт клиента в песочнице amoCRM: на нём кнопка чата amoCRM (справа внизу — онлайн-чат, Telegram,
WhatsApp) и коды Chatsource, вставленные ниже.</p>
<nav><a id="site-home" href="/site/">Главная</a> ·
 <a id="site-ad" href="/site/?utm_source=yandex&amp;utm_medium=cpc&amp;utm_campaign=autumn">Переход с рекламы (utm_campaign=autumn)</a> ·
 <a href="/">Песочница amoCRM</a></nav>
<section>
<h2>Коды на сайте</h2>
{% if not snippets.tracking_code %}<p><b>Коды Chatsource ещё не установлены.</b> В Chatsource добавьте сайт с доменом
<code>{{ host }}</code>, скопируйте его основной код отслеживания и скрипт для вашего сайта из настроек интеграции.</p>{% endif %}
<form method="post" action="/_sandbox/ui/site">
 <label>Основной код отслеживания (в &lt;head&gt;)<br><textarea name="tracking_code">{{ snippets.tracking_code }}</textarea></label>
 <label>Скрипт для вашего сайта (внизу страницы)<br><textarea name="site_script">{{ snippets.site_script }}</textarea></label>
 <p><button type="submit">Установить на сайт</button> <span class="muted">коды хранятся в памяти песочницы</span></p>
</form>
</section>
""" + EMBED_CODE + """
{{ snippets.site_script|safe }}
</body></html>
"""


def register_site_demo(app: Flask, st: SandboxState) -> None:
    snippets = {name: "" for name in SNIPPETS}

    def install(source) -> None:
        for name in SNIPPETS:
            if name in source:
                snippets[name] = str(source.get(name) or "")[:MAX_SNIPPET]

    @app.get("/site/")
    def demo_site() -> str:
        return render_template_string(SITE_PAGE, snippets=snippets, host=request.host.split(":")[0])

    @app.get("/site")
    def demo_site_slash() -> Response:
        return redirect("/site/")

    @app.get("/js/button.js")
    def button_js() -> Response:
        response = Response(BUTTON_JS.read_text(encoding="utf-8"), mimetype="application/javascript")
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/_sandbox/ui/site")
    def ui_site() -> Response:
        install(request.form)
        return redirect("/site/", code=303)

    @app.post("/_sandbox/site")
    def ctl_site() -> Response:
        install(request.get_json(silent=True) or {})
        return app.json.response(dict(snippets))
