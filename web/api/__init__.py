"""Data API v1: `Authorization: Bearer <token>`; errors `{"error": {"code", "message"}}`; lists
`{"data": [...], "total": n}`. Every handler is a thin adapter over a core function and sees only the
token's account. `GET /api/v1/openapi.json` (no token needed) describes every endpoint.

One module per resource, each adding its routes to the one blueprint (web/api/blueprint.py, which
also holds the token check and the error answers). Each route carries its contract (web/api/contract.py)
made of the pydantic models in web/api/models.py: the same models validate the request and make the
OpenAPI document (web/api/openapi.py)."""
from __future__ import annotations

from web.api import backfills, catalog, dashboard, events, integrations, meta, requests, sessions  # noqa: F401 - routes
from web.api.blueprint import bp

__all__ = ["bp"]
