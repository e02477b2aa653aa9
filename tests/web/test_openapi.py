"""`GET /api/v1/openapi.json`: served without a token, in step with the routes, and true to the app —
schemathesis sends generated requests (valid and invalid, bounded) to every operation with a valid
token and checks that none gets a 5xx and every answer matches the document."""
from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from core.models import Integration
from core.platform.db import utcnow
from tests.helpers.pipeline_helpers import connected_integration
from tests.helpers.report_data import add_event, add_request, seed_catalog
from web.api.openapi import document_path

METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}


def test_the_document_is_served_without_a_token(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    # Every operation but the document itself needs the token, and documents its error answers.
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path.endswith("/openapi.json"):
                assert operation["security"] == []
                continue
            assert "security" not in operation, (method, path)
            assert {"400", "401"} <= set(operation["responses"]), (method, path)


def test_the_document_lists_exactly_the_api_routes(app, client):
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = document_path(rule.rule)
            routes.setdefault(path, set()).update(rule.methods & METHODS)
    document = client.get("/api/v1/openapi.json").get_json()
    documented = {path: {m.upper() for m in ops} for path, ops in document["paths"].items()}
    assert documented == routes


def test_error_answers_match_the_error_schema(client, api):
    """A few hand-picked errors, checked against components.schemas.Error by hand."""
    cases = [
        client.get("/api/v1/requests?sort=price", headers=api),
        client.get("/api/v1/requests", headers={"Authorization": "Bearer nope"}),
        client.get("/api/v1/replays/99", headers=api),
        client.post("/api/v1/events/replay", headers=api, json={"statuses": ["done"]}),
    ]
    assert [r.status_code for r in cases] == [400, 401, 404, 422]
    for response in cases:
        error = response.get_json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    assert cases[0].get_json()["error"]["field"] == "sort"
    assert cases[3].get_json()["error"]["field"] == "statuses"


@pytest.fixture
def api_schema(app, client, api, account_id, services, amo):
    """The app with data behind it, so that lists and objects with low ids have real rows to show: the
    first integration is connected to the amoCRM sandbox through the real OAuth redirects, so the
    operations that call amoCRM (custom fields…) are fuzzed for real, not only on their 409 path; the
    second needs re-authorisation, so the dashboard has a warning to show."""
    connected = connected_integration(client, api, amo)
    amo.state.reset_stats()
    with services.session_factory() as session:
        cat = seed_catalog(session, services, account_id)
        session.get(Integration, cat.integration_id).status = "needs_reauth"
        now = utcnow()
        add_request(session, account_id, cat.integration_id, now - timedelta(hours=2), contact_name="Иван Петров",
                    phone="+79151234567", email="ivan@example.ru", campaign_id=cat.campaign_id, site_id=cat.site_id,
                    attribution="session", utm_source="yandex", session_id=None)
        add_request(session, account_id, cat.integration_id, now - timedelta(days=1), channel="site_chat", origin=None)
        add_event(session, account_id, cat.integration_id, status="failed")
        add_event(session, account_id, cat.integration_id, status="done")
        session.commit()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.config.generation.update(with_security_parameters=False)  # the valid token is sent with every case
    return schema, connected.integration_id


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]
MAX_EXAMPLES = 12  # per operation and mode: bounded, so the suite stays quick on two cores


def _has_inputs(operation) -> bool:
    return any(len(group) for group in (operation.path_parameters, operation.query, operation.headers, operation.body))


def test_every_operation_conforms(api_schema, api, amo):
    """Valid and invalid generated requests for each operation. (Driven by hand rather than by
    schemathesis' pytest plugin, whose lazy-fixture mode does not run on pytest 9.) Valid cases of an
    integration's operations name the connected integration, so those that call amoCRM reach the sandbox."""
    schema, connected_id = api_schema
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            # derandomize: the same cases on every run (a fixed seed), so CI cannot pass by luck.
            @given(operation.as_strategy(generation_mode=mode))
            @settings(max_examples=MAX_EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck), database=None, derandomize=True)
            def run(case):
                if mode is GenerationMode.POSITIVE and "integration_id" in (case.path_parameters or {}):  # noqa: B023 - run now
                    case.path_parameters = {**case.path_parameters, "integration_id": connected_id}
                case.call_and_validate(headers=api, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                # Only an operation with nothing to make invalid (no parameters, no body) may have no
                # negative cases; every operation must have valid ones.
                if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                    continue
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): no case could be generated")
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every failure, then report
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    assert amo.state.get_stats()["api_calls"] > 0  # the operations that call amoCRM reached the sandbox
