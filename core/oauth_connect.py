"""OAuth connect (spec step 1): start → amoCRM consent → callback → tokens → account → webhook.

The `state` is a single-use server-side nonce bound to the integration, so the callback needs no
admin cookie (amoCRM may open it in a popup or another window). Each failure is a `ConnectError`
with a code the web layer turns into a clear page.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.amocrm.client import AmoCrmClient
from core.amocrm.errors import AmoCrmError, HostNotAllowed, ReauthRequired
from core.amocrm.hosts import check_url, host_allowed, is_loopback
from core.amocrm.oauth import exchange_code
from core.amocrm.tokens import TokenManager
from core.crypto import new_token, sha256_hex
from core.db import utcnow
from core.integrations import YOURDOMAIN, webhook_url, webhook_url_forms
from core.models import Integration, OAuthState
from core.services import Services
from core.talk_processing import unpark_events

log = logging.getLogger(__name__)
STATE_TTL = timedelta(minutes=30)
WEBHOOK_EVENTS = ("update_talk",)


class ConnectError(Exception):
    """code: yourdomain | host_not_allowed | no_client | unknown_state | state_reused | state_expired |
    denied | bad_callback | code_rejected | amocrm_unavailable"""

    def __init__(self, code: str, message: str, integration_id: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.integration_id = integration_id


def start_connect(session: Session, services: Services, integration: Integration, mode: str = "popup",
                  return_to: str | None = None) -> str:
    """Validate what the admin typed and return the amoCRM consent url. The caller commits."""
    if YOURDOMAIN.lower() in (integration.amocrm_url + integration.token_url).lower():
        raise ConnectError("yourdomain", "Replace YOURDOMAIN in «AmoCRM URL» and «Token URL» with your amoCRM account's domain.", integration.id)
    try:
        base = check_url(integration.amocrm_url, services.settings.amocrm_allowed_hosts)
        check_url(integration.token_url, services.settings.amocrm_allowed_hosts)
    except HostNotAllowed as exc:
        raise ConnectError("host_not_allowed", str(exc), integration.id) from exc
    if not integration.client_id or not integration.client_secret_enc:
        raise ConnectError("no_client", "The integration has no client id / secret: set them or AMOCRM_CLIENT_ID / AMOCRM_CLIENT_SECRET.", integration.id)
    state = new_token(24)
    session.add(OAuthState(account_id=integration.account_id, integration_id=integration.id, state_hash=sha256_hex(state),
                           return_to=return_to if return_to and return_to.startswith("/") and not return_to.startswith("//") else None))
    session.flush()
    query = urlencode({"client_id": integration.client_id, "state": state, "mode": mode if mode in ("popup", "post_message") else "popup"})
    return f"{base.rstrip('/')}/oauth?{query}"


@dataclass
class ConnectResult:
    integration_id: int
    account_name: str | None
    webhook_registered: bool
    warnings: list[str] = field(default_factory=list)
    events_to_enqueue: list[int] = field(default_factory=list)
    return_to: str | None = None


def consume_state(session: Session, state: str | None) -> OAuthState:
    if not state:
        raise ConnectError("unknown_state", "The answer from amoCRM carries no state: start the connection again from the integration.")
    row = session.scalar(sa.select(OAuthState).where(OAuthState.state_hash == sha256_hex(state)).with_for_update())
    if row is None:
        raise ConnectError("unknown_state", "This connection link is unknown: start the connection again from the integration.")
    if row.used_at is not None:
        raise ConnectError("state_reused", "This connection link was already used: start the connection again.", row.integration_id)
    row.used_at = utcnow()
    if utcnow() - row.created_at > STATE_TTL:
        raise ConnectError("state_expired", "The connection took longer than 30 minutes: start it again.", row.integration_id)
    return row


def complete_connect(services: Services, *, state: str | None, code: str | None, referer: str | None,
                     error: str | None) -> ConnectResult:
    """Runs the callback. The state is consumed and committed first, so it is single-use even if a later step fails."""
    with services.session_factory() as session:
        try:
            row = consume_state(session, state)
        finally:
            session.commit()
        integration_id, return_to = row.integration_id, row.return_to
        if error:
            raise ConnectError("denied", "Access was not granted in amoCRM (" + error[:60] + "): connect again and press «Разрешить».", integration_id)
        if not code or not referer:
            raise ConnectError("bad_callback", "amoCRM's answer lacks the code or the account (referer).", integration_id)
        referer_host = referer.strip().split("/")[0]
        hostname = referer_host.split(":")[0]
        if not host_allowed(hostname, services.settings.amocrm_allowed_hosts):
            raise ConnectError("host_not_allowed", f"The account {hostname} is not an allowed amoCRM host (AMOCRM_ALLOWED_HOSTS).", integration_id)
        integration = session.get(Integration, integration_id)
        scheme = "http" if is_loopback(hostname) else "https"
        account_base = f"{scheme}://{referer_host}"
        # The token endpoint is on the account host amoCRM names in `referer` (amocrm-api.md §1); the
        # admin's Token URL is used when it points at that same host.
        configured = urlsplit(integration.token_url)
        token_url = integration.token_url if (configured.netloc or "").lower() == referer_host.lower() else f"{account_base}/oauth2/access_token"
        client_secret = services.secrets.decrypt(integration.client_secret_enc)
        try:
            tokens = exchange_code(services, token_url, integration.client_id, client_secret, code, services.redirect_uri)
        except ReauthRequired as exc:
            raise ConnectError("code_rejected", f"amoCRM rejected the authorisation code: {exc}. Connect again.", integration_id) from exc
        except (AmoCrmError, HostNotAllowed) as exc:
            raise ConnectError("amocrm_unavailable", f"amoCRM did not answer: {exc}. Try again in a minute.", integration_id) from exc
        integration.token_url = token_url
        integration.api_base_url = account_base
        TokenManager(services).store_new_tokens(session, integration, tokens)
        integration.connected_at = utcnow()
        integration.last_error = None
        session.commit()

    result = ConnectResult(integration_id=integration_id, account_name=None, webhook_registered=False, return_to=return_to)
    client = AmoCrmClient(services, integration_id)
    with services.session_factory() as session:
        integration = session.get(Integration, integration_id)
        try:
            account = client.get_account()
            integration.amo_account_id = account.get("id")
            integration.amo_subdomain = account.get("subdomain")
            integration.amo_account_name = account.get("name")
            result.account_name = account.get("name")
        except AmoCrmError as exc:
            result.warnings.append(f"Could not read the amoCRM account: {exc}")
        session.commit()
        try:
            _register(client, services, integration)
            integration.webhook_registered_at = utcnow()
            integration.webhook_disabled = False
            result.webhook_registered = True
        except AmoCrmError as exc:
            warning = (f"The webhook was not registered in amoCRM ({exc}). Add it by hand: amoCRM → Settings → "
                       f"Integrations → Webhooks, the «Webhook url» for the event «Беседа изменена».")
            result.warnings.append(warning)
            integration.last_error = warning
        result.events_to_enqueue = unpark_events(session, integration_id)
        session.commit()
    return result


def _register(client: AmoCrmClient, services: Services, integration: Integration) -> None:
    url, legacy = webhook_url_forms(webhook_url(services, integration))
    client.register_webhook(url, list(WEBHOOK_EVENTS), aliases=[legacy])


def register_webhook(services: Services, integration_id: int) -> None:
    """The admin's «register again» button; raises AmoCrmError with amoCRM's answer."""
    client = AmoCrmClient(services, integration_id)
    with services.session_factory() as session:
        integration = session.get(Integration, integration_id)
        _register(client, services, integration)
        integration.webhook_registered_at = utcnow()
        integration.webhook_disabled = False
        session.commit()


def disconnect(session: Session, integration: Integration) -> None:
    integration.access_token_enc = None
    integration.refresh_token_enc = None
    integration.token_expires_at = None
    integration.token_version += 1
    integration.status = "new"
    integration.is_active = False
