"""Integrations: their settings, the amoCRM connection, the webhook url and amoCRM's custom fields."""
from __future__ import annotations

from flask import g, jsonify

from core.amocrm.errors import AmoCrmError, ReauthRequired
from core.inbox import worker_health
from core.integrations import settings as integrations
from core.integrations.connect import ConnectError, start_connect
from core.integrations.webhook_rotation import rotate_webhook
from core.reporting import dashboard
from web.api import models as m
from web.api.blueprint import bp, created_json, listing, services
from web.api.contract import ApiError, contract, created, ok, read_body, read_body_as_sent
from web.errors import json_error
from web.extensions import db
from web.messages import catalogues

TAGS = ("integrations",)


def integration_dict(integration) -> dict:
    data = integrations.to_dict(services(), integration)
    data["warnings"] = [w.to_dict(catalogues()) for w in dashboard.integration_warnings(
        db.session, integration.account_id, integration.id,
        processing=worker_health.processing_state(db.session, services().redis, integration.account_id))]
    return data


@bp.get("/integrations")
@contract("List integrations", ok(m.IntegrationList), tags=TAGS)
def list_integrations():
    rows = integrations.list_integrations(db.session, g.account_id)
    return listing(rows, len(rows), integration_dict)


@bp.post("/integrations")
@contract("Create an integration", created(m.Integration), tags=TAGS, body=m.IntegrationCreate, errors=(422,))
def create_integration():
    integration = integrations.create_integration(db.session, services(), g.account_id, read_body_as_sent())
    return created_json(integration_dict(integration))


@bp.get("/integrations/<int:integration_id>")
@contract("Read an integration, with its warnings", ok(m.Integration), tags=TAGS, errors=(404,))
def get_integration(integration_id: int):
    return jsonify(integration_dict(integrations.get_integration(db.session, g.account_id, integration_id)))


@bp.patch("/integrations/<int:integration_id>")
@contract("Change an integration's settings (only the fields given)", ok(m.Integration), tags=TAGS,
          body=m.IntegrationSettings, errors=(404, 422))
def patch_integration(integration_id: int):
    integration = integrations.get_integration(db.session, g.account_id, integration_id)
    try:
        integrations.update_integration(db.session, services(), integration, read_body_as_sent())
    except integrations.ActivationBlocked as exc:
        db.session.rollback()
        return json_error(422, "cannot_activate", exc.message, field="is_active", missing=exc.missing)
    db.session.commit()
    return jsonify(integration_dict(integration))


@bp.post("/integrations/<int:integration_id>/connect")
@contract("Start connecting to amoCRM",
          ok(m.AuthorizeUrl, "open authorize_url in the browser; after amoCRM's consent a signed-in admin of this "
                             "account confirms the link («Подключить») before the code is exchanged"),
          tags=TAGS, body=m.ConnectOptions, body_required=False, errors=(404, 422))
def connect_integration(integration_id: int):
    integration = integrations.get_integration(db.session, g.account_id, integration_id)
    options = read_body(optional=True)  # the body is optional; when sent it must be a JSON object
    try:
        url = start_connect(db.session, services(), integration, mode=options.mode)
    except ConnectError as exc:
        raise ApiError(422, exc.code, exc.message)
    db.session.commit()
    return jsonify({"authorize_url": url})


@bp.post("/integrations/<int:integration_id>/webhook/rotate")
@contract("Replace the webhook url (a leaked one): the old url answers 404 at once; when connected, "
          "the new url is registered in amoCRM and the old hook deleted",
          ok(m.WebhookRotation, "rotated; amocrm_error says when amoCRM must be told again"), tags=TAGS, errors=(404,))
def rotate_integration_webhook(integration_id: int):
    integration = integrations.get_integration(db.session, g.account_id, integration_id)
    return jsonify(rotate_webhook(services(), integration, db.session).to_dict())


@bp.get("/integrations/<int:integration_id>/custom-fields")
@contract("amoCRM lead and contact custom fields (all pages)", ok(m.CustomFieldList), tags=TAGS, errors=(404, 409, 502))
def custom_fields(integration_id: int):
    integration = integrations.get_integration(db.session, g.account_id, integration_id)
    if integration.status == "new":
        raise ApiError(409, "not_connected", "connect the integration to amoCRM first")
    try:
        fields = integrations.custom_fields(services(), integration)
    except ReauthRequired as exc:
        raise ApiError(409, "needs_reauth", f"reconnect the integration: {exc}")
    except AmoCrmError as exc:
        raise ApiError(502, "amocrm_error", f"amoCRM answered with an error: {exc}")
    return jsonify({"data": fields, "total": len(fields)})
