"""The Data API's contract in one place: the pydantic models of web/api/models.py validate the request
and make the OpenAPI document, with the API's own error shape (400 `bad_parameter` for the query, 422
`invalid` for the body, `field` naming the culprit)."""
from __future__ import annotations

import pytest
from flask import Blueprint, Flask
from pydantic import ValidationError

from web.api import models
from web.api.contract import describe
from web.api.openapi import _paths


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


def test_a_validation_error_names_the_top_level_field():
    with pytest.raises(ValidationError) as unknown:
        models.ReplayFilter.model_validate({"integration_id": 1, "zz": 1, "aa": 2})
    assert describe(unknown.value) == ("aa", "unknown field(s): aa, zz")
    with pytest.raises(ValidationError) as nested:
        models.SourceCreate.model_validate({"name": "a", "conditions": [[{"param": "utm_source", "op": "eq"}]]})
    assert describe(nested.value) == ("conditions", "conditions[0][0].value is required")
    with pytest.raises(ValidationError) as missing:
        models.CampaignCreate.model_validate({"name": "a"})
    assert describe(missing.value) == ("site_id", "site_id is required")


@pytest.mark.parametrize("path, payload, field", [
    ("/api/v1/sessions", {"site_id": "1"}, "site_id"),  # a number is a number, not its text
    ("/api/v1/sessions", {"site_id": True}, "site_id"),  # nor a boolean
    ("/api/v1/sessions", {"site_id": 1, "utm_sourse": "x"}, "utm_sourse"),  # a typo is refused, not dropped
    ("/api/v1/sessions", {"site_id": 1, "click_ids": {"gclid": 5}}, "click_ids"),
    ("/api/v1/sources", {"name": "a", "priority": "5"}, "priority"),
    ("/api/v1/sources", {"name": "a", "conditions": [[{"param": "utm_source", "op": "like", "value": "x"}]]}, "conditions"),
    ("/api/v1/events/replay", {"statuses": []}, "statuses"),
    ("/api/v1/integrations", {"name": "a", "excluded_channels": ["Telegram!"]}, "excluded_channels"),
])
def test_a_body_that_breaks_its_model_is_422_naming_the_field(client, api, path, payload, field):
    error = error_of(client.post(path, headers=api, json=payload), 422)
    assert error["code"] == "invalid" and error["field"] == field and error["message"]


def test_the_connect_body_is_optional_but_checked_when_sent(client, api):
    integration = client.post("/api/v1/integrations", headers=api, json={"name": "amo"}).get_json()
    url = f"/api/v1/integrations/{integration['id']}/connect"
    assert error_of(client.post(url, headers=api, json={"mode": "tab"}), 422)["field"] == "mode"
    assert error_of(client.post(url, headers=api, json={"mod": "popup"}), 422)["field"] == "mod"
    # No body: the default mode; the integration still points at YOURDOMAIN, which core refuses by name.
    assert error_of(client.post(url, headers=api), 422)["code"] == "yourdomain"


@pytest.mark.parametrize("query, field", [("integration_id=0", "integration_id"), ("replay_id=1.0", "replay_id"),
                                          ("limit=0", "limit"), ("status=Failed", "status")])
def test_a_query_that_breaks_its_model_is_400_naming_the_parameter(client, api, query, field):
    error = error_of(client.get(f"/api/v1/events?{query}", headers=api), 400)
    assert error["code"] == "bad_parameter" and error["field"] == field


def test_every_event_status_is_documented_and_accepted_as_a_filter(client, api):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["components"]["schemas"]["Event"]["properties"]["status"]["enum"] == list(models.EVENT_STATUSES)
    [status_parameter] = [p for p in document["paths"]["/api/v1/events"]["get"]["parameters"] if p["name"] == "status"]
    assert status_parameter["schema"]["enum"] == list(models.EVENT_STATUSES)
    for status in models.EVENT_STATUSES:
        assert client.get(f"/api/v1/events?status={status}", headers=api).status_code == 200, status


def test_each_operation_takes_exactly_its_documented_query_parameters(client, api):
    """The document's parameters and the parameters the API takes are the same model's fields."""
    document = client.get("/api/v1/openapi.json").get_json()
    for path, operations in document["paths"].items():
        if "{" in path or "get" not in operations or path.endswith("openapi.json"):
            continue
        documented = sorted(p["name"] for p in operations["get"].get("parameters", []) if p["in"] == "query")
        error = error_of(client.get(f"{path}?not_a_parameter=1", headers=api), 400)
        assert error["field"] == "not_a_parameter", path
        takes = error["message"].partition("it takes")[2]
        assert sorted(name.strip(" :") for name in takes.split(",") if name.strip(" :") != "none") == documented, path


def test_a_route_without_a_contract_cannot_be_left_out_of_the_document():
    app = Flask(__name__)
    bp = Blueprint("api", __name__, url_prefix="/api/v1")
    bp.add_url_rule("/undocumented", "undocumented", lambda: "")
    app.register_blueprint(bp)
    with pytest.raises(LookupError, match="/api/v1/undocumented"):
        _paths(app)
