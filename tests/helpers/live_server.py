"""Our app served on 127.0.0.1 in a thread, so the sandbox can post webhooks and redirect to it."""
from __future__ import annotations

import threading


class LiveServer:
    """Bound to port 0 by the server itself; `url` carries the port the kernel gave it."""

    def __init__(self):
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *a, **k):
                pass

        self.app = None
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True, request_handler=Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _dispatch(self, environ, start_response):
        return self.app(environ, start_response)

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
