"""The OpenAPI 3.1 document of Data API v1, served at `GET /api/v1/openapi.json` (no token needed).

Nothing in it is written by hand: the paths are the blueprint's routes, each operation is the contract
attached to its view (web/api/contract.py), and the schemas are pydantic's JSON Schema of the models in
web/api/models.py — the same models that validate the requests. `tests/web/test_openapi.py` checks
that the document names exactly the routes and runs schemathesis against the app: generated requests,
valid and invalid, must never get a 5xx nor an answer that breaks this document.
"""
from __future__ import annotations

import re
from copy import deepcopy

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from web.api import models
from web.api.contract import Operation

REF_TEMPLATE = "#/components/schemas/{model}"
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": models.MAX_ID}
METHODS = ("get", "post", "patch", "put", "delete")
ERRORS = {  # status: (components.responses name, what it means)
    400: ("BadRequest", "a query parameter or the JSON body is malformed (`field` names it)"),
    401: ("Unauthorized", "no token, or an unknown or revoked one"),
    404: ("NotFound", "no such object in this account"),
    409: ("Conflict", "the object is in a state that does not allow this now"),
    422: ("Unprocessable", "the body is well-formed but a value is not acceptable (`field` names it)"),
    502: ("AmoCrmError", "amoCRM answered with an error"),
    503: ("Unavailable", "the database is unavailable; try again shortly"),
}
EVERY_OPERATION_ERRORS = (400, 401, 503)  # a token and a query string are read, and the database can be down


class _DocumentSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema without the titles it makes up from field names (noise for a reader)."""

    def field_title_should_be_set(self, schema) -> bool:
        return False


def _tidy(schema):
    """Drop model titles and `default: null` (absent and null mean the same to every endpoint)."""
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    tidy = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str) or key == "default" and value is None:
            continue
        if key == "properties":
            tidy[key] = {name: _tidy(prop) for name, prop in value.items()}
        else:
            tidy[key] = _tidy(value)
    return tidy


def _component_models() -> list[type[BaseModel]]:
    bases = (models.Answer, models.Open, models.Closed)
    return [value for value in vars(models).values()
            if isinstance(value, type) and issubclass(value, BaseModel) and value not in bases
            and issubclass(value, bases)]


def _component_schemas() -> dict[str, dict]:
    _, top = models_json_schema([(model, "validation") for model in _component_models()], ref_template=REF_TEMPLATE,
                                schema_generator=_DocumentSchema)
    return {name: _tidy(schema) for name, schema in top["$defs"].items()}


SCHEMAS: dict[str, dict] = _component_schemas()


def _ref(model: type[BaseModel]) -> dict:
    name = model.__name__
    assert name in SCHEMAS, f"{name} is not a model of web/api/models.py"
    return {"$ref": REF_TEMPLATE.format(model=name)}


def _schema(schema) -> dict:
    return _ref(schema) if isinstance(schema, type) else deepcopy(schema)


def _without_null(schema: dict) -> dict:
    """A query parameter is absent rather than null: `X | None` is documented as X."""
    branches = schema.get("anyOf")
    if branches and {"type": "null"} in branches and len(branches) == 2:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**next(b for b in branches if b != {"type": "null"}), **rest}
    return schema


def _query_parameters(query: type[models.Query]) -> list[dict]:
    schema = _tidy(query.model_json_schema(ref_template=REF_TEMPLATE, schema_generator=_DocumentSchema))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(prop)
        description = prop.pop("description", "")
        parameters.append({"name": name, "in": "query", "required": False, "schema": prop, "description": description})
    return parameters


def _path_parameters(rule: str) -> list[dict]:
    return [{"name": name, "in": "path", "required": True, "schema": dict(ID_SCHEMA),
             "description": name.removesuffix("_id") + " id"}
            for name in re.findall(r"<int:([a-z_]+)>", rule)]


def _operation(operation: Operation, rule: str) -> dict:
    doc = {"summary": operation.summary, "tags": list(operation.tags), "responses": {}}
    if operation.description:
        doc["description"] = operation.description
    parameters = _path_parameters(rule) + _query_parameters(operation.query)
    if parameters:
        doc["parameters"] = parameters
    if operation.body is not None:
        doc["requestBody"] = {"required": operation.body_required,
                              "content": {"application/json": {"schema": _ref(operation.body)}}}
    for reply in operation.replies:
        doc["responses"][str(reply.status)] = {"description": reply.description,
                                               "content": {reply.media_type: {"schema": _schema(reply.schema)}}}
    for status in operation.errors + (() if operation.public else EVERY_OPERATION_ERRORS):
        doc["responses"].setdefault(str(status), {"$ref": f"#/components/responses/{ERRORS[status][0]}"})
    if operation.public:
        doc["security"] = []
    return doc


def document_path(rule: str) -> str:
    """A Flask rule (`/api/v1/integrations/<int:integration_id>`) as an OpenAPI path (`…/{integration_id}`)."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _paths(app: Flask) -> dict:
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith("api."):
            continue
        operation = getattr(app.view_functions[rule.endpoint], "api_operation", None)
        if operation is None:
            raise LookupError(f"the route {rule.rule} has no @contract: every API route is documented")
        for method in METHODS:
            if method.upper() in rule.methods:
                paths.setdefault(document_path(rule.rule), {})[method] = _operation(operation, rule.rule)
    return paths


def _error_responses() -> dict:
    return {name: {"description": description, "content": {"application/json": {"schema": _ref(models.Error)}}}
            for name, description in ERRORS.values()}


def openapi_document(app: Flask) -> dict:
    """The document for the app's routes (built once per app: routes do not change after start)."""
    cached = app.extensions.get("chatsource.openapi")
    if cached is None:
        cached = app.extensions["chatsource.openapi"] = _build(app)
    return deepcopy(cached)


def _build(app: Flask) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Chatsource Data API",
            "version": "1",
            "description": "Finished amoCRM chats as attributed requests, and everything to set them up. "
                           "Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`; lists are "
                           "`{\"data\": [...], \"total\": n}`. A token sees only its own account.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(app),
        "components": {
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "create one with `flask --app wsgi api-tokens create NAME`; only its hash is stored"}},
            "schemas": deepcopy(SCHEMAS),
            "responses": _error_responses(),
        },
    }
