"""The one replay rule through the API's one-event replay: an event the replay by filter would leave
alone is refused with the reason, and keeps its status and error."""
from __future__ import annotations

from core.models import Integration, WebhookEvent


def _failed_event(services, account_id) -> tuple[int, int]:
    from core.integrations.settings import create_integration

    with services.session_factory() as session:
        integration = create_integration(session, services, account_id, {"name": "Выключена"})  # not active yet
        event = WebhookEvent(account_id=account_id, integration_id=integration.id, dedupe_key="k", action="update",
                             talk_id=5, item={"talk_id": "5", "is_in_work": "0"}, status="failed", error="boom")
        session.add(event)
        session.commit()
        return integration.id, event.id


def _event(services, event_id) -> tuple[str, str]:
    with services.session_factory() as session:
        event = session.get(WebhookEvent, event_id)
        return event.status, event.error


def test_one_event_replay_follows_the_replay_rule(client, api, services, account_id):
    integration_id, event_id = _failed_event(services, account_id)
    refused = client.post(f"/api/v1/events/{event_id}/replay", headers=api)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "integration_inactive"
    assert _event(services, event_id) == ("failed", "boom")

    with services.session_factory() as session:
        integration = session.get(Integration, integration_id)
        integration.is_active, integration.status = True, "needs_reauth"
        session.commit()
    refused = client.post(f"/api/v1/events/{event_id}/replay", headers=api)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "needs_reauth"
    assert "reconnect" in refused.get_json()["error"]["message"]
    assert _event(services, event_id) == ("failed", "boom")

    with services.session_factory() as session:
        session.get(Integration, integration_id).status = "connected"
        session.commit()
    queued = client.post(f"/api/v1/events/{event_id}/replay", headers=api)
    assert queued.status_code == 202 and queued.get_json()["status"] == "received"
