"""Secrets that travel in urls, kept out of every log line: the webhook url's token (its path is its
only secret, `/webhooks/amocrm/<token>` or `…/<token>/`), the OAuth callback's one-time code and state,
and the confirmation link of a connect waiting for its admin.

One filter for every logger: the app's handlers and werkzeug (web/__init__.py), and gunicorn's access
and error logs (gunicorn.conf.py) — the error log prints the url of a request that raised, and a
traceback can carry it in an exception message, so the formatted traceback is redacted too."""
from __future__ import annotations

import logging
import re

WEBHOOK_TOKEN = re.compile(r"(/webhooks/amocrm/)[^/?\s\"']+")
OAUTH_SECRETS = re.compile(r"((?:^|[?&])(?:code|state)=)[^&\s\"']+")
OAUTH_CALLBACK = "/oauth/amocrm/callback"
# A parked OAuth connect's confirmation link (core.integrations.connect), as a path or url-encoded in the
# sign-in page's `next`: whoever holds it (signed in to the right account) can complete the connect.
CONFIRM_TOKEN = re.compile(r"((?:/|%2F)oauth(?:/|%2F)amocrm(?:/|%2F)confirm(?:/|%2F))[^/?&\s\"']+", re.I)


def redact(text: str) -> str:
    if "/webhooks/amocrm/" in text:
        text = WEBHOOK_TOKEN.sub(r"\1***", text)
    if OAUTH_CALLBACK in text:
        text = OAUTH_SECRETS.sub(r"\1***", text)
    if "confirm" in text:
        text = CONFIRM_TOKEN.sub(r"\1***", text)
    return text


class RedactSecrets(logging.Filter):
    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
