"""`POST /webhooks/amocrm/<webhook_token>/` (with or without the slash): validate, store, commit, enqueue, answer fast.

amoCRM allows 2 s per delivery and disables a hook after 100 invalid replies in 2 hours, so nothing
here talks to amoCRM; a 2xx is sent only once every talk item is committed to the inbox.
"""
from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from core.inbox import drain_marker
from core.inbox.webhooks import (
    MAX_KEYS,
    MalformedWebhook,
    find_integration_by_webhook_token,
    parse_webhook,
    store_webhook,
)
from web.errors import json_error
from web.extensions import csrf, db
from workers import outbox

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)
csrf.exempt(bp)


# Both forms, one handler and no redirect (amoCRM does not follow redirects, and Flask would answer
# a 308 for the missing or extra slash): urls are shown with the slash Kommo's form insists on, and
# hooks registered before that keep theirs without it.
@bp.post("/webhooks/amocrm/<webhook_token>/")
@bp.post("/webhooks/amocrm/<webhook_token>")
def amocrm_webhook(webhook_token: str):
    services = current_app.extensions["chatsource.services"]
    settings = services.settings
    limit = settings.webhook_max_bytes
    if request.content_length is not None and request.content_length > limit:
        return json_error(413, "too_large", f"the body is over {limit} bytes")
    request.max_content_length = limit
    # A database that is down raises here or at the commit below: web/errors.py answers 503 (amoCRM retries).
    integration = find_integration_by_webhook_token(db.session, webhook_token)
    if integration is None:
        return json_error(404, "unknown_webhook", "no integration has this webhook url; copy it again from the integration settings")

    ctype = (request.mimetype or "").lower()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        return json_error(400, "bad_content_type", f"expected application/x-www-form-urlencoded as amoCRM sends, got {ctype}")
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return json_error(413, "too_large", f"the body is over {limit} bytes")
    if len(raw) > limit:
        return json_error(413, "too_large", f"the body is over {limit} bytes")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_KEYS)
        parsed = parse_webhook(pairs)
    except UnicodeDecodeError:
        return json_error(400, "malformed", "the body is not UTF-8 text")
    except MalformedWebhook as exc:
        return json_error(400, "malformed", str(exc))
    except ValueError as exc:  # parse_qsl: too many fields
        return json_error(400, "malformed", str(exc))

    integration_id = integration.id  # read before the commit expires the row (no reload after it)
    result = store_webhook(db.session, integration, parsed)
    db.session.commit()

    # One message per body, not per item, and none while one is waiting: the worker that takes it
    # drains the integration's whole backlog (core.inbox.talk_processing, core.inbox.drain_marker), so
    # more would only cost Redis round trips and worker CPU. Sent after the response is made (web/outbox.py).
    outbox.enqueue_talk_events(drain_marker.messages_to_send(services.redis, integration_id, result.to_enqueue))
    log.info("webhook integration=%s items=%s stored=%s duplicates=%s statuses=%s",
             integration_id, len(parsed.talks), result.stored, result.duplicates, result.statuses)
    return jsonify({"stored": result.stored, "duplicates": result.duplicates, "queued": len(result.to_enqueue)})
