"""A valid amoCRM access token per integration, safe under many workers.

amoCRM rotates the refresh token on every refresh (and may invalidate the old one at once), so two
workers refreshing the same integration at the same time can lock it out. `TokenManager` follows
engineering-notes §4:

1. Not forced and `token_expires_at - 120 s > now`: use the stored token.
2. Otherwise take the lock `oauth-refresh:{id}` (30 s expiry, 30 s wait).
3. Re-read the row in a fresh session: if another worker refreshed meanwhile (`token_version`
   changed and the token is fresh, or the token is simply fresh again), use that.
4. Otherwise refresh, write with compare-and-swap on `token_version`, and commit before returning.
5. If amoCRM rejects the refresh token, re-read: if the refresh token changed, the race is over.
6. If it did not change, retry once with the same token (Kommo keeps the old one valid until the new
   one is used); on a second rejection set `status='needs_reauth'`, `last_error`, commit, and raise
   `ReauthRequired`. Syncing stops until the integration is reconnected (`store_new_tokens`).
7. A 401 on an unexpired token: the client calls `current(..., force_refresh=True, stale_version=v)`.

Tokens are stored encrypted with `services.secrets` and never logged.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.amocrm.errors import AmoCrmError, AmoTransient, ReauthRequired
from core.amocrm.oauth import TokenSet, refresh_tokens
from core.models import Integration
from core.platform.crypto import SecretUnreadable
from core.platform.db import utcnow
from core.platform.locks import LockUnavailable

log = logging.getLogger("chatsource.amocrm.tokens")

REFRESH_MARGIN = timedelta(seconds=120)
LOCK_TIMEOUT_S = 30
LOCK_WAIT_S = 30


@dataclass(frozen=True)
class AccessToken:
    token: str = field(repr=False)
    version: int


@dataclass(frozen=True)
class _State:
    id: int
    version: int
    status: str
    access_enc: str | None
    refresh_enc: str | None
    expires_at: datetime | None
    token_url: str
    client_id: str
    client_secret_enc: str | None


def cas_store_tokens(
    session: Session, integration_id: int, expected_version: int, token_set: TokenSet, secrets, now: datetime
) -> bool:
    """Write a new token pair only if `token_version` is still `expected_version`; bump it.

    Returns False (and changes nothing) when someone else wrote first. Does not commit."""
    result = session.execute(
        sa.update(Integration)
        .where(Integration.id == integration_id, Integration.token_version == expected_version)
        .values(
            access_token_enc=secrets.encrypt(token_set.access_token),
            refresh_token_enc=secrets.encrypt(token_set.refresh_token),
            token_expires_at=token_set.expires_at,
            token_refreshed_at=now,
            token_version=Integration.token_version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def store_new_tokens(session: Session, integration: Integration, token_set: TokenSet, secrets=None,
                     now: datetime | None = None) -> None:
    """After the authorization-code exchange: store the pair, bump the version, mark connected.

    `secrets` is a `SecretBox` (or a `Services`, whose `.secrets` is used). The caller commits."""
    box = getattr(secrets, "secrets", secrets)
    if box is None:
        raise TypeError("store_new_tokens needs the SecretBox (services.secrets)")
    now = now or utcnow()
    integration.access_token_enc = box.encrypt(token_set.access_token)
    integration.refresh_token_enc = box.encrypt(token_set.refresh_token)
    integration.token_expires_at = token_set.expires_at
    integration.token_refreshed_at = now
    if sa.inspect(integration).persistent:
        # In SQL, so a concurrent CAS write cannot make two different pairs share one version.
        integration.token_version = Integration.token_version + 1
    else:
        integration.token_version = (integration.token_version or 0) + 1
    integration.status = "connected"
    integration.last_error = None
    integration.last_error_at = None
    if integration.connected_at is None:
        integration.connected_at = now


class TokenManager:
    def __init__(self, services, clock: Callable[[], datetime] = utcnow):
        self.services = services
        self.clock = clock

    # -- public -------------------------------------------------------------------------------

    def access_token(self, integration_id: int, force_refresh: bool = False) -> str:
        return self.current(integration_id, force_refresh=force_refresh).token

    def current(self, integration_id: int, force_refresh: bool = False,
                stale_version: int | None = None) -> AccessToken:
        """A usable token and the `token_version` it belongs to.

        `stale_version`: with `force_refresh`, the version of the token amoCRM just rejected; if the
        row has moved on since, the newer token is used instead of refreshing again."""
        state = self._read(integration_id)
        self._check_usable(state)
        seen = state.version if stale_version is None else stale_version
        if self._fresh(state) and (not force_refresh or state.version != seen):
            return self._token(state)
        return self._refresh_locked(integration_id, seen, force_refresh)

    def store_new_tokens(self, session: Session, integration: Integration, token_set: TokenSet) -> None:
        """After the code exchange: store the pair, bump the version, status 'connected'. The caller commits."""
        store_new_tokens(session, integration, token_set, self.services.secrets, now=self.clock())

    def mark_needs_reauth(self, integration_id: int, reason: str, expected_version: int | None = None) -> bool:
        """Set `status='needs_reauth'` and `last_error`; commit. With `expected_version`, only if the
        tokens have not been replaced meanwhile. Returns whether the row was changed."""
        now = self.clock()
        with self.services.session_factory() as session:
            stmt = sa.update(Integration).where(Integration.id == integration_id)
            if expected_version is not None:
                stmt = stmt.where(Integration.token_version == expected_version)
            result = session.execute(
                stmt.values(status="needs_reauth", last_error=reason[:2000], last_error_at=now)
                .execution_options(synchronize_session=False)
            )
            session.commit()
        changed = result.rowcount == 1
        if changed:
            log.warning("integration %s needs re-authorisation: %s", integration_id, reason)
        return changed

    # -- internals ----------------------------------------------------------------------------

    def _read(self, integration_id: int) -> _State:
        with self.services.session_factory() as session:
            row = session.get(Integration, integration_id)
            if row is None:
                raise AmoCrmError(f"integration {integration_id} does not exist")
            return _State(
                id=row.id,
                version=row.token_version or 0,
                status=row.status,
                access_enc=row.access_token_enc,
                refresh_enc=row.refresh_token_enc,
                expires_at=row.token_expires_at,
                token_url=row.token_url,
                client_id=row.client_id or self.services.settings.amocrm_client_id,
                client_secret_enc=row.client_secret_enc,
            )

    def _check_usable(self, state: _State) -> None:
        if state.status == "needs_reauth":
            raise ReauthRequired(
                f"amoCRM integration {state.id} needs to be reconnected (its authorisation was rejected)"
            )
        if not state.access_enc or not state.refresh_enc:
            raise ReauthRequired(f"amoCRM integration {state.id} is not connected yet")

    def _fresh(self, state: _State) -> bool:
        return state.expires_at is not None and state.expires_at - REFRESH_MARGIN > self.clock()

    def _decrypt(self, state: _State, value: str | None) -> str:
        try:
            plain = self.services.secrets.decrypt(value)
        except SecretUnreadable:
            raise ReauthRequired(
                f"the stored amoCRM tokens of integration {state.id} cannot be decrypted with "
                "TOKEN_ENCRYPTION_KEYS; restore the old key or reconnect the integration"
            ) from None
        if not plain:
            raise ReauthRequired(f"amoCRM integration {state.id} is not connected yet")
        return plain

    def _token(self, state: _State) -> AccessToken:
        return AccessToken(self._decrypt(state, state.access_enc), state.version)

    def _refresh_locked(self, integration_id: int, seen_version: int, force: bool) -> AccessToken:
        try:
            with self.services.locks.lock(
                f"oauth-refresh:{integration_id}", timeout_s=LOCK_TIMEOUT_S, blocking_timeout_s=LOCK_WAIT_S
            ):
                state = self._read(integration_id)  # fresh session: another worker may have refreshed
                self._check_usable(state)
                if self._fresh(state) and (not force or state.version != seen_version):
                    return self._token(state)
                return self._refresh(state)
        except LockUnavailable:
            raise AmoTransient(
                f"another worker has been refreshing the amoCRM token of integration {integration_id} "
                f"for over {LOCK_WAIT_S}s; try again later"
            ) from None

    def _client_secret(self, state: _State) -> str:
        if state.client_secret_enc:
            try:
                return self.services.secrets.decrypt(state.client_secret_enc)
            except SecretUnreadable:
                raise ReauthRequired(
                    f"the client secret of integration {state.id} cannot be decrypted with TOKEN_ENCRYPTION_KEYS"
                ) from None
        return self.services.settings.amocrm_client_secret

    def _refresh(self, state: _State) -> AccessToken:
        services = self.services
        refresh_plain = self._decrypt(state, state.refresh_enc)
        client_secret = self._client_secret(state)
        last_error: ReauthRequired | None = None
        for attempt in (1, 2):
            try:
                token_set = refresh_tokens(
                    services, state.token_url, state.client_id, client_secret, refresh_plain,
                    services.redirect_uri,
                )
            except ReauthRequired as exc:
                last_error = exc
                latest = self._read(state.id)
                if latest.version != state.version or (
                    latest.refresh_enc and self._decrypt(latest, latest.refresh_enc) != refresh_plain
                ):
                    # Someone else rotated the pair meanwhile: the race is over, use their tokens.
                    log.info("integration %s: refresh token rotated elsewhere; using the new one", state.id)
                    self._check_usable(latest)
                    return self._token(latest)
                if attempt == 1:
                    log.warning("integration %s: amoCRM rejected the refresh token; retrying once", state.id)
                    continue
                break
            else:
                now = self.clock()
                with services.session_factory() as session:
                    stored = cas_store_tokens(session, state.id, state.version, token_set, services.secrets, now)
                    session.commit()
                if stored:
                    log.info("integration %s: amoCRM tokens refreshed (version %s)", state.id, state.version + 1)
                    return AccessToken(token_set.access_token, state.version + 1)
                # Someone wrote new tokens without the lock (a reconnect) or after it expired: theirs win.
                log.warning("integration %s: tokens changed during refresh; using the stored ones", state.id)
                latest = self._read(state.id)
                self._check_usable(latest)
                return self._token(latest)

        reason = f"amoCRM refused to refresh the access token: {last_error}"
        if not self.mark_needs_reauth(state.id, reason, expected_version=state.version):
            latest = self._read(state.id)
            self._check_usable(latest)
            return self._token(latest)
        raise ReauthRequired(reason, status=last_error.status if last_error else None,
                             request_id=last_error.request_id if last_error else None)
