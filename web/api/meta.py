"""`GET /api/v1/openapi.json`: the document itself, the one operation that needs no token."""
from __future__ import annotations

from flask import current_app, jsonify

from web.api.blueprint import bp
from web.api.contract import contract, ok
from web.api.openapi import openapi_document


@bp.get("/openapi.json")
@contract("This document", ok({"type": "object"}, "OpenAPI 3.1"), tags=("meta",), public=True)
def openapi_json():
    return jsonify(openapi_document(current_app))
