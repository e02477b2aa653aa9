"""Errors raised by the amoCRM client layer.

Callers (workers, web) decide what to do from the class alone:

- `HostNotAllowed`: a configuration problem; nothing was sent.
- `ReauthRequired`: the integration must be reconnected by a person; stop syncing it.
- `AmoTransient`: try again later (the worker's backoff); `retry_after` is a hint in seconds.
- `AmoBlocked`: amoCRM blocked the account or our IP; back off for a long time and tell a person.
- `AmoApiError`: amoCRM refused this particular request (a 4xx); retrying will not help.

Messages are shown to operators and written to logs, so they never contain tokens, client secrets
or our webhook secret.
"""
from __future__ import annotations


class AmoCrmError(Exception):
    """Base class of everything the amoCRM layer raises."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id

    def __str__(self) -> str:
        return self.message


class HostNotAllowed(AmoCrmError):
    """The URL's host is outside AMOCRM_ALLOWED_HOSTS, or it is plain http to a non-loopback host.

    Raised before any request is made, so no token or secret leaves the process."""

    def __init__(self, message: str, said=None):
        super().__init__(message)
        self.said = said  # the problem as a core.platform.messages.Message, for the admin's form


class ReauthRequired(AmoCrmError):
    """The refresh token is dead or revoked (or amoCRM keeps answering 401): reconnect the integration."""


class AmoTransient(AmoCrmError):
    """Network error, timeout, 5xx, or 429 that persisted: safe to retry later."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, request_id=request_id)
        self.retry_after = retry_after


class AmoApiError(AmoCrmError):
    """Any other 4xx: amoCRM rejected the request itself."""

    def __init__(self, status: int, title: str | None, detail: str | None, request_id: str | None = None):
        self.title = title or ""
        self.detail = detail or ""
        message = f"amoCRM answered {status}"
        if self.title:
            message += f": {self.title}"
        if self.detail and self.detail != self.title:
            message += f" ({self.detail})"
        if request_id:
            message += f" [request id {request_id}]"
        super().__init__(message, status=status, request_id=request_id)


class AmoBlocked(AmoCrmError):
    """403 with an HTML page (amoCRM's block page) or a 429 storm: the account or IP is blocked."""
