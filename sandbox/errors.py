"""Exceptions raised by the sandbox state and turned into HTTP answers by the app."""

from __future__ import annotations

from typing import Any


class SandboxError(Exception):
    """A control-API or domain error: ``status`` + message (+ optional amo problem fields)."""

    def __init__(self, message: str, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra


class ApiProblem(SandboxError):
    """An amoCRM API error rendered as ``application/problem+json``."""


class OAuthError(Exception):
    """A token-endpoint error (OAuthProblemJson with a league/oauth2-server style hint)."""

    def __init__(self, hint: str) -> None:
        super().__init__(hint)
        self.hint = hint
