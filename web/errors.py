"""JSON error bodies shared by the Data API and the webhook endpoint: {"error": {"code", "message"}}."""
from __future__ import annotations

from flask import jsonify


def json_error(status: int, code: str, message: str, **extra):
    body = {"error": {"code": code, "message": message, **extra}}
    response = jsonify(body)
    response.status_code = status
    return response
