"""The web side of workers/outbox.py: each request buffers what it enqueues and sends it once the
view has produced its response (its commits are done by then). A request that failed — a 5xx
answer (web/errors.py turns an exception into one) or an exception no handler caught — sends
nothing; the rows it committed wait for the sweeper."""
from __future__ import annotations

from flask import Flask, current_app, g

from workers import outbox

_TOKEN = "chatsource_outbox_token"


def install(app: Flask) -> None:
    app.before_request(_open)
    app.after_request(_send)
    app.teardown_request(_drop)


def _open() -> None:
    setattr(g, _TOKEN, outbox.open_outbox(current_app.extensions["chatsource.broker"]))


def _send(response):
    token = g.pop(_TOKEN, None)
    if token is not None:
        outbox.close_outbox(token, send_jobs=response.status_code < 500)
    return response


def _drop(exc) -> None:
    token = g.pop(_TOKEN, None)
    if token is not None:  # after_request did not run: the view raised
        outbox.close_outbox(token, send_jobs=False)
