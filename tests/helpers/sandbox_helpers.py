"""Helpers shared by the sandbox tests: the registered client, OAuth steps, the control API, a webhook receiver."""

from __future__ import annotations

import pathlib
import threading
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from sandbox.server import SandboxServer

ROOT_DIR = str(pathlib.Path(__file__).resolve().parents[2])

CLIENT = {
    "client_id": "chatsource-test-app",
    "client_secret": "s3cr3t-value",
    "redirect_uri": "http://127.0.0.1:1/integrations/amocrm/callback",
}

def get_code(server: SandboxServer, http: requests.Session, state: str | None = "st-1") -> dict[str, list[str]]:
    params = {"client_id": CLIENT["client_id"], "mode": "post_message"}
    if state is not None:
        params["state"] = state
    r = http.get(f"{server.url}/oauth", params=params, allow_redirects=False)
    assert r.status_code == 302, r.text
    return parse_qs(urlsplit(r.headers["Location"]).query)


def exchange(server: SandboxServer, http: requests.Session, code: str, as_form: bool = False) -> requests.Response:
    body = {
        "client_id": CLIENT["client_id"], "client_secret": CLIENT["client_secret"],
        "grant_type": "authorization_code", "code": code, "redirect_uri": CLIENT["redirect_uri"],
    }
    url = f"{server.url}/oauth2/access_token"
    return http.post(url, data=body) if as_form else http.post(url, json=body)


def refresh(server: SandboxServer, http: requests.Session, refresh_token: str) -> requests.Response:
    return http.post(f"{server.url}/oauth2/access_token", json={
        "client_id": CLIENT["client_id"], "client_secret": CLIENT["client_secret"],
        "grant_type": "refresh_token", "refresh_token": refresh_token, "redirect_uri": CLIENT["redirect_uri"],
    })


def authorize(server: SandboxServer, http: requests.Session) -> dict[str, Any]:
    r = exchange(server, http, get_code(server, http)["code"][0])
    assert r.status_code == 200, r.text
    return r.json()


class Api:
    """Bearer-authenticated calls to one sandbox."""

    def __init__(self, server: SandboxServer, http: requests.Session, tokens: dict[str, Any]) -> None:
        self.server, self.http, self.tokens = server, http, tokens

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(f"{self.server.url}{path}", headers=self.headers(), **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.http.post(f"{self.server.url}{path}", headers=self.headers(), **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.http.delete(f"{self.server.url}{path}", headers=self.headers(), **kw)


def control(server: SandboxServer, http: requests.Session, path: str, json: Any = None,
            method: str = "POST") -> Any:
    r = http.request(method, f"{server.url}/_sandbox{path}", json=json)
    assert r.status_code < 300, (r.status_code, r.text)
    return r.json()


# ----------------------------------------------------------------------- webhook receiver --
class _Quiet(WSGIRequestHandler):
    def log_request(self, *a: Any, **k: Any) -> None:
        pass


class Receiver:
    """A tiny HTTP endpoint in a thread that records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.delay = 0.0
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}/amocrm/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        with self._lock:
            self.requests.append({
                "method": environ["REQUEST_METHOD"],
                "path": environ["PATH_INFO"],
                "content_type": environ.get("CONTENT_TYPE"),
                "user_agent": environ.get("HTTP_USER_AGENT"),
                "body": body.decode("utf-8"),
                "pairs": parse_qsl(body.decode("utf-8"), keep_blank_values=True),
            })
        if self.delay:
            time.sleep(self.delay)
        status = self.status
        start_response(f"{status} {HTTPStatus(status).phrase}", [("Content-Type", "text/plain")])
        return [b"ok"]

    def wait_for(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= n:
                break
            time.sleep(0.01)
        return list(self.requests)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
