"""OAuth connect (spec step 1): start → amoCRM consent → callback → tokens → account → webhook.

The `state` is a single-use server-side nonce bound to the integration, to the admin who pressed
«Подключить» and to a value kept in that admin's browser session. All accounts share one amoCRM app,
so a state alone proves nothing about who clicked «Разрешить»: an admin of account B could point his
integration at a victim's amoCRM and send the victim the consent link (issue 10 §1). Hence:

* the callback exchanges the code at once only in the browser session that started the connect,
  signed in as the user who started it (the popup and the same-window redirect: no extra click);
* anywhere else (another browser, a connect started through the API, which has no user) the code
  is parked, encrypted, and a single-use confirmation link is made. A signed-in user of the
  integration's own account sees which amoCRM account goes to which integration and confirms with
  «Подключить»; only then is the code exchanged — within amoCRM's 20 minutes. A user of another
  account is refused and nothing is exchanged.

Each failure is a `ConnectError` with a code the web layer turns into a clear page.
"""
from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.amocrm.client import AmoCrmClient
from core.amocrm.errors import AmoCrmError, HostNotAllowed, ReauthRequired
from core.amocrm.hosts import check_url, host_allowed, is_loopback
from core.amocrm.oauth import exchange_code
from core.amocrm.tokens import TokenManager
from core.inbox.talk_processing import unpark_events
from core.integrations.settings import YOURDOMAIN, webhook_url, webhook_url_forms
from core.models import Account, Integration, OAuthState
from core.platform.crypto import new_token, sha256_hex
from core.platform.db import utcnow
from core.platform.messages import N_, Message, define
from core.platform.services import Services

log = logging.getLogger(__name__)
STATE_TTL = timedelta(minutes=30)
CODE_TTL = timedelta(minutes=20)  # amoCRM's authorisation codes live 20 minutes (https://www.amocrm.ru/developers/content/oauth/oauth)
WEBHOOK_EVENTS = ("update_talk",)
TOKEN_URL_CORRECTED = define("connect.token_url_corrected", N_("Token URL corrected to %(url)s (the account chosen in amoCRM)."))


class ConnectError(Exception):
    """code: yourdomain | host_not_allowed | no_client | unknown_state | state_reused | state_expired |
    denied | bad_callback | code_rejected | amocrm_unavailable | unknown_confirmation |
    confirmation_used | code_expired | wrong_account"""

    def __init__(self, code: str, message: str, integration_id: int | None = None, amocrm_error: str | None = None,
                 said: Message | None = None):
        super().__init__(message)
        self.code = code
        self.message = message  # English, for logs and the Data API; people read the code's text
        self.said = said  # the details beyond the code's text, as a message (a refused address: why)
        self.integration_id = integration_id
        self.amocrm_error = amocrm_error  # amoCRM's own `error` code on the redirect (access_denied…)


def expected_token_url(amocrm_url: str) -> str:
    """The token endpoint of the account at `amocrm_url` (amocrm-api.md §1: /oauth2/access_token on it)."""
    parts = urlsplit(amocrm_url)
    return f"{parts.scheme}://{parts.netloc}/oauth2/access_token"


def check_connectable(services: Services, integration: Integration) -> str:
    """What the admin typed, checked before anyone is sent to amoCRM: the account's base url, or
    `ConnectError`. Nothing is written."""
    if YOURDOMAIN.lower() in (integration.amocrm_url + integration.token_url).lower():
        raise ConnectError("yourdomain", "Replace YOURDOMAIN in «AmoCRM URL» and «Token URL» with your amoCRM account's domain.", integration.id)
    try:
        base = check_url(integration.amocrm_url, services.settings.amocrm_allowed_hosts)
        check_url(integration.token_url, services.settings.amocrm_allowed_hosts)
    except HostNotAllowed as exc:
        raise ConnectError("host_not_allowed", str(exc), integration.id, said=exc.said) from exc
    account_host = (urlsplit(integration.amocrm_url).netloc or "").lower()
    if (urlsplit(integration.token_url).netloc or "").lower() != account_host:
        # amoCRM issues tokens only on the account's own host; another host would get the code and secret.
        raise ConnectError("token_url_elsewhere", f"The Token URL must be on the AmoCRM URL's host: "
                           f"{expected_token_url(integration.amocrm_url)}", integration.id)
    if not integration.client_id or not integration.client_secret_enc:
        raise ConnectError("no_client", "The integration has no client id / secret: set them or AMOCRM_CLIENT_ID / AMOCRM_CLIENT_SECRET.", integration.id)
    return base


def start_connect(session: Session, services: Services, integration: Integration, mode: str = "popup",
                  return_to: str | None = None, *, user_id: int | None = None, browser_binding: str | None = None) -> str:
    """Validate what the admin typed and return the amoCRM consent url. The caller commits.

    `user_id` and `browser_binding` (a random value the web layer keeps in the admin's session) let
    the callback complete without confirmation; without them (the Data API) it always asks."""
    base = check_connectable(services, integration)
    state = new_token(24)
    session.add(OAuthState(account_id=integration.account_id, integration_id=integration.id, state_hash=sha256_hex(state),
                           return_to=return_to if return_to and return_to.startswith("/") and not return_to.startswith("//") else None,
                           user_id=user_id if browser_binding else None,
                           browser_hash=sha256_hex(browser_binding) if user_id and browser_binding else None))
    session.flush()
    query = urlencode({"client_id": integration.client_id, "state": state, "mode": mode if mode in ("popup", "post_message") else "popup"})
    return f"{base.rstrip('/')}/oauth?{query}"


@dataclass
class ConnectResult:
    integration_id: int
    account_name: str | None
    webhook_registered: bool
    warnings: list[Message | str] = field(default_factory=list)  # a message, or English as it came
    to_enqueue: list[int] = field(default_factory=list)
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


@dataclass
class PendingConfirmation:
    """The callback arrived outside the session that started the connect: a user of the account
    must confirm at `/oauth/amocrm/confirm/<token>` (the token is shown once, only its hash is kept)."""

    integration_id: int
    token: str


@dataclass
class ConfirmationDetails:
    """What the confirmation page names before anything is linked."""

    integration_id: int
    integration_name: str
    account_name: str
    amocrm_account: str
    expires_at: datetime


def receive_callback(services: Services, *, state: str | None, code: str | None, referer: str | None,
                     error: str | None, user_id: int | None, browser_binding: str | None
                     ) -> ConnectResult | PendingConfirmation:
    """amoCRM's redirect. The state is consumed and committed first, so it is single-use even if a
    later step fails. The code is exchanged now only for the user and browser session that started
    the connect; otherwise it is parked for confirmation."""
    with services.session_factory() as session:
        try:
            row = consume_state(session, state)
        finally:
            session.commit()
        integration_id = row.integration_id
        if error:
            raise ConnectError("denied", "Access was not granted in amoCRM (" + error[:60] + "): connect again and press «Allow».",
                               integration_id, amocrm_error=error[:60])
        if not code or not referer:
            raise ConnectError("bad_callback", "amoCRM's answer lacks the code or the account (referer).", integration_id)
        referer_host = _referer_host(services, referer, integration_id)
        same_session = (row.user_id is not None and user_id == row.user_id and row.browser_hash is not None
                        and browser_binding is not None and hmac.compare_digest(row.browser_hash, sha256_hex(browser_binding)))
        if not same_session:
            token = new_token(24)
            row.pending_code_enc = services.secrets.encrypt(code)
            row.pending_referer = referer_host
            row.pending_since = utcnow()
            row.confirm_hash = sha256_hex(token)
            session.commit()
            log.info("amoCRM connect of integration %s waits for confirmation", integration_id)
            return PendingConfirmation(integration_id, token)
        return_to = row.return_to
    return _exchange_and_finish(services, integration_id, code, referer_host, return_to)


def _pending_row(session: Session, token: str | None, account_id: int, *, lock: bool = False) -> OAuthState:
    """The parked connect behind a confirmation link, for a user of `account_id`. Another account's
    user learns nothing about it (not even whether it was used or has expired) and spends nothing."""
    unknown = ConnectError("unknown_confirmation", "This confirmation link is unknown: start the connection again from the integration.")
    if not token or len(token) > 100:
        raise unknown
    query = sa.select(OAuthState).where(OAuthState.confirm_hash == sha256_hex(token))
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise unknown
    if row.account_id != account_id:
        raise ConnectError("wrong_account", "This amoCRM connection belongs to another Chatsource account; only its users can confirm it.")
    if row.confirmed_at is not None or row.pending_code_enc is None:
        raise ConnectError("confirmation_used", "This connection was already confirmed or cancelled: start it again.", row.integration_id)
    return row


def _code_expired(row: OAuthState) -> bool:
    return utcnow() - row.pending_since > CODE_TTL


def _expired_error(row: OAuthState) -> ConnectError:
    return ConnectError("code_expired", "amoCRM's authorisation code lives 20 minutes and this one has expired: connect again.", row.integration_id)


def confirmation_details(session: Session, token: str | None, account_id: int) -> ConfirmationDetails:
    """For the confirmation page of a signed-in user of `account_id`; raises `ConnectError`."""
    row = _pending_row(session, token, account_id)
    if _code_expired(row):
        raise _expired_error(row)
    integration = session.get(Integration, row.integration_id)
    account = session.get(Account, row.account_id)
    return ConfirmationDetails(integration_id=row.integration_id, integration_name=integration.name,
                               account_name=account.name, amocrm_account=row.pending_referer,
                               expires_at=row.pending_since + CODE_TTL)


def confirm_connect(services: Services, token: str | None, account_id: int) -> ConnectResult:
    """The «Подключить» of the confirmation page: exchange the parked code. Single-use: the link is
    spent (and the code dropped) before the exchange, even when the code turns out to have expired."""
    with services.session_factory() as session:
        row = _pending_row(session, token, account_id, lock=True)
        row.confirmed_at = utcnow()
        code = services.secrets.decrypt(row.pending_code_enc)
        row.pending_code_enc = None
        integration_id, referer_host, return_to = row.integration_id, row.pending_referer, row.return_to
        expired = _code_expired(row)
        session.commit()
        if expired:
            raise _expired_error(row)
    return _exchange_and_finish(services, integration_id, code, referer_host, return_to)


def _referer_host(services: Services, referer: str, integration_id: int) -> str:
    referer_host = referer.strip().split("/")[0]
    hostname = referer_host.split(":")[0]
    if not host_allowed(hostname, services.settings.amocrm_allowed_hosts):
        raise ConnectError("host_not_allowed", f"The account {hostname} is not an allowed amoCRM host (AMOCRM_ALLOWED_HOSTS).", integration_id)
    return referer_host


def _exchange_and_finish(services: Services, integration_id: int, code: str, referer_host: str,
                         return_to: str | None) -> ConnectResult:
    """Trade the code for tokens, then read the account and register the webhook."""
    with services.session_factory() as session:
        integration = session.get(Integration, integration_id)
        hostname = referer_host.split(":")[0]
        scheme = "http" if is_loopback(hostname) else "https"
        account_base = f"{scheme}://{referer_host}"
        # The token endpoint is on the account host amoCRM names in `referer` (https://www.amocrm.ru/developers/content/oauth/step-by-step); the
        # admin's Token URL is used when it points at that same host.
        configured = urlsplit(integration.token_url)
        token_url = integration.token_url if (configured.netloc or "").lower() == referer_host.lower() else f"{account_base}/oauth2/access_token"
        corrected = token_url != integration.token_url  # the admin chose another account at the consent
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
    if corrected:  # never silently: the admin typed one address and amoCRM named another account
        result.warnings.append(TOKEN_URL_CORRECTED(url=token_url))
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
                       f"Integrations → Webhooks, the «Webhook url» for the event «Talk changed».")
            result.warnings.append(warning)
            integration.last_error = warning
        result.to_enqueue = unpark_events(session, integration_id)
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
