"""Run the sandbox in a background thread (tests, demo scripts).

    with SandboxServer(auto_approve=True, client_id="app", client_secret="s",
                       redirect_uri="http://127.0.0.1:5000/oauth/callback") as amo:
        amo.url      # "http://127.0.0.1:54321"
        amo.host     # "127.0.0.1:54321"  (= OAuth `referer`)
        amo.state    # SandboxState: drive it directly, e.g. amo.state.create_chat(...)
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_sandbox_app
from .state import SandboxState


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # no access log in tests
        pass


class SandboxServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, state: SandboxState | None = None,
                 quiet: bool = True, **settings: Any) -> None:
        self.quiet = quiet
        self.bind_host = host
        self.bind_port = port
        if state is None:
            state = SandboxState(**settings)
        elif settings:
            state.update_settings(settings)
        self.state = state
        self.app = create_sandbox_app(state)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        self._session: requests.Session | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "SandboxServer":
        if self._server is not None:
            return self
        self._server = make_server(self.bind_host, self.bind_port, self.app, threaded=True,
                                   request_handler=_QuietHandler if self.quiet else None)
        self.port = self._server.server_port
        with self.state.lock:
            if not self.state.settings.get("account_host"):
                self.state.settings["account_host"] = self.host
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="amocrm-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.deliverer.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """``host:port`` the server listens on (the account host / OAuth ``referer``)."""
        if self.port is None:
            raise RuntimeError("server not started")
        return f"{self.bind_host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # -- conveniences over the control API ------------------------------------------------
    @property
    def http(self) -> requests.Session:
        """A requests session that never uses proxies (loopback)."""
        if self._session is None:
            self._session = requests.Session()
            self._session.trust_env = False
        return self._session

    def control(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        """Call ``/_sandbox{path}`` and return the decoded JSON (raises for HTTP errors)."""
        resp = self.http.request(method, f"{self.url}/_sandbox{path}", json=json, timeout=30, **kwargs)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change knobs at run time (same as POST /_sandbox/settings)."""
        return self.state.update_settings(settings)

    def register_client(self, client_id: str, client_secret: str, redirect_uri: str,
                        name: str | None = None) -> dict[str, Any]:
        return self.state.register_client(client_id, client_secret, redirect_uri, name)

    def create_chat(self, **kwargs: Any) -> dict[str, Any]:
        """Same as POST /_sandbox/chats (sends ``add_talk``)."""
        return self.state.create_chat(**kwargs)

    def close_talk(self, talk_id: int) -> dict[str, Any]:
        """Close as a manager would (sends ``update_talk`` with is_in_work=0)."""
        return self.state.close_talk(talk_id, force_close=True, control=True)

    def disable_webhooks(self, disabled: bool = True) -> list[dict[str, Any]]:
        """Every hook disabled as amoCRM does after 100 bad answers (same as POST /_sandbox/webhooks/disable)."""
        return self.state.set_all_webhooks_disabled(disabled)

    def add_event(self, **event: Any) -> dict[str, Any]:
        """An event of any shape in the log (same as POST /_sandbox/events)."""
        return self.state.add_event(event)

    def stats(self) -> dict[str, Any]:
        return self.state.get_stats()

    def deliveries(self, **filters: Any) -> list[dict[str, Any]]:
        return self.state.list_deliveries(**filters)

    def reset(self, keep_settings: bool = False) -> None:
        self.state.reset(keep_settings=keep_settings)
