"""amoCRM (Kommo) access: the only code that talks to amoCRM over HTTP, and what its data means.

- `hosts`: the allowlist check every URL passes before a request is sent.
- `oauth`: the token endpoint (code exchange, refresh).
- `tokens.TokenManager`: a valid access token per integration (lock, re-read, compare-and-swap).
- `client.AmoCrmClient`: the REST API v4 calls, rate limited and with amoCRM's error semantics.
- `contact_data`: reading contacts and leads (name, phone, email, the session field).
- `messengers`: talk origin codes → chat channels and their names.
"""
from core.amocrm.errors import (
    AmoApiError,
    AmoBlocked,
    AmoCrmError,
    AmoTransient,
    HostNotAllowed,
    ReauthRequired,
)

__all__ = [
    "AmoApiError",
    "AmoBlocked",
    "AmoCrmError",
    "AmoTransient",
    "HostNotAllowed",
    "ReauthRequired",
]
