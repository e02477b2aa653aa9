"""The client's site for the browser tests: pages served on www.shop.localhost (Chromium resolves
*.localhost to the loopback) with our tracking code, the site script and amoCRM's button stand-in.

Which snippets a page carries is `SiteServer.config`, set by each test before it navigates.
"""
from __future__ import annotations

import threading
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

HERE = Path(__file__).resolve().parent
TITLES = {"/": "Диваны", "/index.html": "Диваны", "/catalog.html": "Каталог", "/delivery.html": "Доставка"}
SITE_DOMAIN = "shop.localhost"


class SiteServer:
    def __init__(self, host: str = f"www.{SITE_DOMAIN}"):
        class Quiet(WSGIRequestHandler):
            def log_request(self, *a, **k):
                pass

        self.config: dict = {}
        self.reset()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=Quiet)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def reset(self, **config) -> None:
        """tracking_code / site_script: HTML; button: None, or the object to create in <head> before
        our code ("amo_social_button" or "crm_plugin")."""
        self.config = {"tracking_code": "", "site_script": "", "button": None, **config}

    def page(self, path: str) -> str:
        html = (HERE / "page.html").read_text(encoding="utf-8")
        button = self.config["button"]
        head = f"<script>__installButton({button!r});</script>" if button else ""
        return (html.replace("{{TITLE}}", TITLES[path]).replace("{{BUTTON_HEAD}}", head)
                .replace("{{TRACKING_CODE}}", self.config["tracking_code"])
                .replace("{{SITE_SCRIPT}}", self.config["site_script"]))

    def _app(self, environ, start_response):
        request = Request(environ)
        if request.path in TITLES:
            response = Response(self.page(request.path), mimetype="text/html")
        elif request.path == "/amo_button.js":
            response = Response((HERE / "amo_button.js").read_bytes(), mimetype="application/javascript")
        else:
            response = Response("not found", status=404)
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
