"""Each operation's contract — its query model, body model and answers — attached to its view function,
and the reading of a request against it.

`@contract(...)` on a route stores an `Operation`; web/api/openapi.py makes the document from the
stored operations and web/api/blueprint.py checks every request's query string against the same
models, so a parameter or a field is declared in one place. A validation failure keeps the API's error
shape: 400 `bad_parameter` for the query, 422 `invalid` for the body, `field` naming the culprit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from flask import current_app, g, request
from pydantic import BaseModel, ValidationError

from core.platform.errors import ValidationFailed
from web.api import models
from web.json_input import JsonTooDeep

BIGGEST_NUMBER = models.MAX_ID


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


@dataclass(frozen=True)
class Reply:
    """One documented answer: a model (or a raw JSON schema) and what it means."""
    status: int
    schema: type[BaseModel] | dict
    description: str = "OK"
    media_type: str = "application/json"


@dataclass(frozen=True)
class Operation:
    summary: str
    tags: tuple[str, ...]
    replies: tuple[Reply, ...]
    query: type[models.Query] = models.NoQuery
    body: type[BaseModel] | None = None
    body_required: bool = True
    errors: tuple[int, ...] = ()  # documented error answers beyond 400, 401 and 503
    description: str | None = None
    public: bool = False  # no token needed
    extra_responses: dict[str, Any] = field(default_factory=dict)


def contract(summary: str, *replies: Reply, tags: tuple[str, ...], **options) -> Callable:
    """Attach the operation's contract to its view function (put it under the route decorator)."""
    operation = Operation(summary=summary, tags=tags, replies=replies, **options)

    def attach(view):
        view.api_operation = operation
        return view

    return attach


def ok(schema, description: str = "OK") -> Reply:
    return Reply(200, schema, description)


def created(schema) -> Reply:
    return Reply(201, schema, "created")


def accepted(schema, description: str) -> Reply:
    return Reply(202, schema, description)


def current_operation() -> Operation | None:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return getattr(view, "api_operation", None)


# --- query strings -------------------------------------------------------------------------------

def read_query(operation: Operation) -> models.Query:
    """The query string as the operation's model; 400 naming the first parameter at fault."""
    args = request.args
    if any(_has_nul(k) or _has_nul(v) for k, v in args.items(multi=True)):
        # PostgreSQL cannot store or compare text with NUL; no real value carries one.
        raise ApiError(400, "bad_parameter", "query parameters must not contain the NUL character")
    allowed = set(operation.query.model_fields)
    unknown = sorted(set(args) - allowed)
    if unknown:
        takes = f"; it takes: {', '.join(sorted(allowed))}" if allowed else "; it takes none"
        raise ApiError(400, "bad_parameter", f"unknown query parameter(s): {', '.join(unknown)}{takes}", field=unknown[0])
    for name, value in args.items(multi=True):
        if not value.strip():
            raise ApiError(400, "bad_parameter", f"{name} is empty: give a value or leave the parameter out", field=name)
    try:
        return operation.query.model_validate(args.to_dict())
    except ValidationError as exc:
        name, message = describe(exc)
        raise ApiError(400, "bad_parameter", message, field=name) from None


def query():
    """This request's query string, read by the blueprint before the handler runs."""
    return g.api_query


# --- bodies -----------------------------------------------------------------------------------------

def read_body(model: type[BaseModel] | None = None, *, optional: bool = False):
    """The JSON body as the operation's body model (or `model`): 400 if it is not a JSON object, 422
    naming the field when a value does not fit. `optional`: an empty body reads as `{}`."""
    data = {} if optional and not request.get_data() else json_object()
    return _validated(model or current_operation().body, data)


def read_body_as_sent(model: type[BaseModel] | None = None) -> dict:
    """The JSON body checked against the model but handed on as sent: for core functions that read a
    dict of "only the fields given" (PATCH) and apply their own rules to each."""
    data = json_object()
    _validated(model or current_operation().body, data)
    return data


def _validated(model: type[BaseModel], data: dict):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        name, message = describe(exc)
        raise ValidationFailed(message, name) from None


def json_object() -> dict:
    try:
        data = current_app.json.loads(request.get_data()) if request.is_json else None
    except JsonTooDeep as exc:
        raise ApiError(400, "bad_json", str(exc))
    except ValueError:
        data = None
    if data is None:
        raise ApiError(400, "bad_json", "send a JSON object with Content-Type: application/json")
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    if _has_nul(data):
        raise ApiError(400, "bad_json", "strings must not contain the NUL character")
    if _has_huge_number(data):
        raise ApiError(422, "invalid", f"numbers must be within ±{BIGGEST_NUMBER}")
    return data


def describe(exc: ValidationError) -> tuple[str | None, str]:
    """The field at fault (the top-level name) and a sentence about the first error."""
    errors = exc.errors(include_url=False)
    extra = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1)
    if extra:
        return extra[0], f"unknown field(s): {', '.join(extra)}"
    first = errors[0]
    loc = first["loc"]
    name = str(loc[0]) if loc else None
    where = name + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:]) if loc else "the body"
    if first["type"] == "missing":
        return name, f"{where} is required"
    message = first["msg"].removeprefix("Value error, ")
    return name, f"{where}: {message[:1].lower()}{message[1:]}"


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _has_huge_number(value) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) > BIGGEST_NUMBER
    if isinstance(value, float):
        return value != value or abs(value) > BIGGEST_NUMBER  # NaN or beyond any id
    if isinstance(value, dict):
        return any(_has_huge_number(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_huge_number(v) for v in value)
    return False
