"""Authentication: SPA login with rotating refresh tokens, external OIDC tokens, API tokens.

`authenticate` turns an Authorization header into a Principal, checking on every request that
the user, its organization, its login session or the API token are still valid, so that a
deactivation, a logout or a revocation takes effect on the very next request.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Uuid, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import jwt
from app.core.db import set_tenant, tenant_of
from app.core.enums import AuthEventKind, OrganizationKind, Role, Scope
from app.core.principal import Principal
from app.core.problems import InvalidGrant, NotAuthenticated, TooManyAttempts
from app.core.security import Security
from app.core.settings import OidcIssuer, Settings
from app.models import ApiToken, AuthEvent, AuthSession, ExternalIdentity, Organization, RefreshToken, User
from app.services.identity.auth_events import ClientInfo, record

API_TOKEN_PREFIX = "snodo_"
REFRESH_TOKEN_PREFIX = "snodo-rt_"
LAST_USED_RESOLUTION = timedelta(seconds=60)
ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


def secret_hash(secret: str) -> bytes:
    """The SHA-256 of a random secret (API token, session), as stored in place of the secret."""
    # The secrets are 256-bit random values, not passwords: a plain SHA-256 is the right hash.
    return hashlib.sha256(secret.encode()).digest()


def normalise_login(login: str) -> str:
    """A login as compared: trimmed and lower-cased."""
    return login.strip().lower()


# ---------------------------------------------------------------------------------------------
# Login, refresh, logout


async def login(
    *, session: AsyncSession, security: Security, login: str, password: str, client: ClientInfo
) -> TokenPair:
    """Check the password (argon2id, same cost for unknown accounts) and open a login session."""
    login_key = normalise_login(login)[:254]
    await _refuse_if_throttled(session, security, login_key, client)

    row = (
        await session.execute(
            select(User, Organization)
            .join(Organization, Organization.id == User.organization_id)
            .where(func.lower(User.email) == login_key)
        )
    ).one_or_none()
    user, organization = row if row else (None, None)
    valid = security.passwords.verify(user.password_hash if user else None, password)
    if not valid or user is None or organization is None or not user.active or not organization.active:
        await record(
            session,
            security.clock,
            AuthEventKind.login_failed,
            client,
            login=login_key,
            user_id=user.id if user else None,
        )
        raise InvalidGrant()

    now = security.clock.now()
    if user.password_hash and security.passwords.needs_rehash(user.password_hash):
        user.password_hash = security.passwords.hash(password)
    user.last_login_at = now
    auth_session = AuthSession(
        id=uuid.uuid4(),
        user_id=user.id,
        created_at=now,
        expires_at=now + timedelta(seconds=security.settings.session_max_age_s),
        client_address=client.address,
    )
    session.add(auth_session)
    pair = await _issue_pair(session, security, user, auth_session, now)
    await record(
        session,
        security.clock,
        AuthEventKind.login_succeeded,
        client,
        login=login_key,
        user_id=user.id,
        organization_id=user.organization_id,
        session_id=str(auth_session.id),
    )
    return pair


async def _refuse_if_throttled(
    session: AsyncSession, security: Security, login_key: str, client: ClientInfo
) -> None:
    """429 when one of the limits of `Settings` (login throttling) is reached. The account's
    failures count from one address, and from all of them except at an address where the account
    logged in lately: someone guessing from elsewhere cannot lock a social worker out of her office."""
    settings = security.settings
    now = security.clock.now()
    window = timedelta(seconds=settings.login_window_s)
    since = now - window
    account = AuthEvent.login == login_key
    successes = account & (AuthEvent.kind == AuthEventKind.login_succeeded)
    last_success = await session.scalar(select(func.max(AuthEvent.occurred_at)).where(successes))
    account_failures = account & (
        AuthEvent.occurred_at > (max(since, last_success) if last_success else since)
    )
    limits: list[tuple[str, ColumnElement[bool], int]] = []
    if client.address:
        from_here = AuthEvent.client_address == client.address
        limits.append(
            ("account_from_address", account_failures & from_here, settings.login_max_failures_per_account)
        )
        if not await _known_address(session, settings, successes & from_here, now):
            limits.append(
                ("account", account_failures, settings.login_max_failures_per_account_all_addresses)
            )
        limits.append(
            ("address", from_here & (AuthEvent.occurred_at > since), settings.login_max_failures_per_address)
        )
    else:  # no address to tell the caller apart: the strictest limit, on the account
        limits.append(("account", account_failures, settings.login_max_failures_per_account))
    # The longest wait of the limits reached: retrying after a shorter one would be refused again.
    retry_after, limit = max(
        [(await _retry_after(session, c, n, window, now), name) for name, c, n in limits]
    )
    if retry_after > 0:
        await record(
            session,
            security.clock,
            AuthEventKind.login_throttled,
            client,
            login=login_key,
            retry_after=retry_after,
            limit=limit,
        )
        raise TooManyAttempts(retry_after)


async def _known_address(
    session: AsyncSession, settings: Settings, successes_here: ColumnElement[bool], now: datetime
) -> bool:
    """Whether the account logged in from this address (`successes_here`) within
    `login_known_address_days`."""
    if settings.login_known_address_days == 0:
        return False
    since = now - timedelta(days=settings.login_known_address_days)
    found = await session.scalar(
        select(AuthEvent.id).where(successes_here, AuthEvent.occurred_at > since).limit(1)
    )
    return found is not None


async def _retry_after(
    session: AsyncSession, condition: ColumnElement[bool], limit: int, window: timedelta, now: datetime
) -> int:
    """Seconds until fewer than `limit` failures remain in the window; 0 if already so."""
    failures = (
        await session.scalars(
            select(AuthEvent.occurred_at)
            .where(AuthEvent.kind == AuthEventKind.login_failed, condition)
            .order_by(AuthEvent.occurred_at.desc())
            .limit(limit)
        )
    ).all()
    if len(failures) < limit:
        return 0
    oldest_counted = failures[-1]
    return max(1, math.ceil((oldest_counted + window - now).total_seconds()))


async def _issue_pair(
    session: AsyncSession, security: Security, user: User, auth_session: AuthSession, now: datetime
) -> TokenPair:
    settings = security.settings
    refresh_secret = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    refresh_expires_at = min(now + timedelta(seconds=settings.refresh_token_ttl_s), auth_session.expires_at)
    session.add(
        RefreshToken(
            session_id=auth_session.id,
            token_hash=secret_hash(refresh_secret),
            issued_at=now,
            expires_at=refresh_expires_at,
        )
    )
    access_token, _ = jwt.encode_access_token(
        signing_jwk=security.signing_jwk,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        subject=str(user.id),
        ttl=timedelta(seconds=settings.access_token_ttl_s),
        now=now,
        extra={"sid": str(auth_session.id)},
    )
    await session.flush()
    return TokenPair(
        access_token=access_token,
        expires_in=settings.access_token_ttl_s,
        refresh_token=refresh_secret,
        refresh_expires_in=max(0, int((refresh_expires_at - now).total_seconds())),
    )


async def refresh(
    *, session: AsyncSession, security: Security, refresh_token: str, client: ClientInfo
) -> TokenPair:
    """Exchange a refresh token for a new pair. A token exchanged again after the grace period
    (`refresh_reuse_grace_s`) is proof of theft: the whole session (every token of the family,
    and its access tokens) is revoked. Within it, the second exchange is a second tab refreshing
    with the same token a moment later: it gets a pair of its own in the same session."""
    now = security.clock.now()
    row = (
        await session.execute(
            select(RefreshToken, AuthSession, User, Organization)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .join(User, User.id == AuthSession.user_id)
            .join(Organization, Organization.id == User.organization_id)
            .where(RefreshToken.token_hash == secret_hash(refresh_token))
            .with_for_update(of=[RefreshToken, AuthSession])
        )
    ).one_or_none()
    if row is None:
        await record(session, security.clock, AuthEventKind.refresh_rejected, client, reason="unknown")
        raise NotAuthenticated("The refresh token is not valid.", invalid_token=True)
    token, auth_session, user, organization = row
    grace = timedelta(seconds=security.settings.refresh_reuse_grace_s)
    reused_within_grace = token.used_at is not None and now - token.used_at <= grace
    if token.used_at is not None and not reused_within_grace:
        if auth_session.revoked_at is None:
            auth_session.revoked_at = now
            auth_session.revoked_reason = "refresh_token_reuse"
        await record(
            session,
            security.clock,
            AuthEventKind.refresh_reuse_detected,
            client,
            user_id=user.id,
            organization_id=user.organization_id,
            session_id=str(auth_session.id),
        )
        raise NotAuthenticated(
            "The refresh token was already used; the session is closed.", invalid_token=True
        )
    reason = (
        "session_revoked"
        if auth_session.revoked_at is not None
        else "expired"
        if token.expires_at <= now or auth_session.expires_at <= now
        else "user_inactive"
        if not user.active or not organization.active
        else None
    )
    if reason:
        await record(
            session, security.clock, AuthEventKind.refresh_rejected, client, user_id=user.id, reason=reason
        )
        raise NotAuthenticated("The refresh token is not valid.", invalid_token=True)
    if not reused_within_grace:
        token.used_at = now  # the grace period runs from the first exchange
    pair = await _issue_pair(session, security, user, auth_session, now)
    await record(
        session,
        security.clock,
        AuthEventKind.refresh_succeeded,
        client,
        user_id=user.id,
        organization_id=user.organization_id,
        session_id=str(auth_session.id),
        reused_within_grace=reused_within_grace,
    )
    return pair


async def logout(
    *,
    session: AsyncSession,
    security: Security,
    principal: Principal,
    refresh_token: str | None,
    client: ClientInfo,
) -> None:
    """Close the caller's login session (and the one the refresh token belongs to, if it is theirs)."""
    session_ids = {principal.session_id} if principal.session_id else set()
    if refresh_token:
        owned = await session.scalar(
            select(RefreshToken.session_id)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(
                RefreshToken.token_hash == secret_hash(refresh_token),
                AuthSession.user_id == principal.user_id,
            )
        )
        if owned:
            session_ids.add(owned)
    if session_ids:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id.in_(session_ids), AuthSession.revoked_at.is_(None))
            .values(revoked_at=security.clock.now(), revoked_reason="logout")
        )
    await record(
        session,
        security.clock,
        AuthEventKind.logout,
        client,
        user_id=principal.user_id,
        organization_id=principal.organization_id,
        sessions=sorted(str(s) for s in session_ids),
    )


# ---------------------------------------------------------------------------------------------
# Every request: who is calling?


async def authenticate(
    *, session: AsyncSession, security: Security, authorization: str | None, client: ClientInfo
) -> Principal:
    """The caller, with the transaction scoped to its ambito (row-level security)."""
    principal = await _authenticate(session, security, authorization, client)
    if principal.kind != "user" or principal.session_id is None:
        # A local access token's query scoped it already (`tenant_of`); the others did not.
        await set_tenant(session, principal.ambito_id)
    return principal


async def _authenticate(
    session: AsyncSession, security: Security, authorization: str | None, client: ClientInfo
) -> Principal:
    if not authorization:
        raise NotAuthenticated("Send `Authorization: Bearer <token>`.")
    scheme, _, credentials = authorization.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials or len(credentials) > 8192:
        raise NotAuthenticated("Send `Authorization: Bearer <token>`.", invalid_token=True)
    if credentials.startswith(API_TOKEN_PREFIX):
        return await _authenticate_api_token(session, security, credentials, client)
    try:
        issuer_name = jwt.unverified_issuer(credentials)
    except jwt.TokenInvalid as exc:
        await record(session, security.clock, AuthEventKind.access_token_rejected, client, reason=exc.reason)
        raise NotAuthenticated("The token is not valid.", invalid_token=True) from None
    if issuer_name == security.settings.jwt_issuer:
        return await _authenticate_local(session, security, credentials, client)
    issuer = security.oidc_issuer(issuer_name)
    if issuer is None:
        await record(
            session,
            security.clock,
            AuthEventKind.oidc_rejected,
            client,
            reason="unknown issuer",
            issuer=(issuer_name or "")[:200],  # chosen by the caller: keep it bounded
        )
        raise NotAuthenticated("The token is not valid.", invalid_token=True)
    return await _authenticate_oidc(session, security, issuer, credentials, client)


async def _authenticate_local(
    session: AsyncSession, security: Security, token: str, client: ClientInfo
) -> Principal:
    settings = security.settings
    try:
        claims = jwt.decode(
            token,
            security.local_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            now=security.clock.now(),
            expected_type=jwt.ACCESS_TOKEN_TYPE,
        )
        user_id = uuid.UUID(str(claims["sub"]))
        session_id = uuid.UUID(str(claims["sid"]))
    except jwt.TokenInvalid as exc:
        if exc.reason != "expired":  # expiry is routine: the SPA refreshes
            await record(
                session, security.clock, AuthEventKind.access_token_rejected, client, reason=exc.reason
            )
        raise NotAuthenticated("The token is not valid.", invalid_token=True) from None
    except (KeyError, ValueError):
        await record(session, security.clock, AuthEventKind.access_token_rejected, client, reason="claims")
        raise NotAuthenticated("The token is not valid.", invalid_token=True) from None

    connection = await session.connection()
    row = (
        await connection.execute(_LOCAL_SESSION, {"user_id": user_id, "session_id": session_id})
    ).one_or_none()
    if (
        row is None
        or not _user_usable(row)
        or row.revoked_at is not None
        or row.expires_at <= security.clock.now()
    ):
        # The tenant may be set: nothing but the refusal follows in this transaction.
        raise NotAuthenticated("The session has ended.", invalid_token=True)
    return _user_principal(row, session_id=session_id)


# What a user principal is made of (`_user_principal`), as plain columns: the ORM entities of
# User, Organization and AuthSession cost ~1 ms of a request's CPU.
_USER_COLUMNS = (
    User.id,
    User.full_name,
    User.ambito_id,
    User.roles,
    User.is_org_admin,
    User.active.label("user_active"),
    Organization.id.label("organization_id"),
    Organization.kind.label("organization_kind"),
    Organization.name.label("organization_name"),
    Organization.comune_id.label("organization_comune_id"),
    Organization.active.label("organization_active"),
)
# Every request with a local access token asks this: built once, and the transaction scoped to
# the user's ambito in the same round trip.
_LOCAL_SESSION = (
    select(
        *_USER_COLUMNS,
        AuthSession.revoked_at,
        AuthSession.expires_at,
        tenant_of(User.ambito_id).label("tenant"),
    )
    .join(Organization, Organization.id == User.organization_id)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id", type_=Uuid()),
        AuthSession.id == bindparam("session_id", type_=Uuid()),
    )
)


async def _authenticate_oidc(
    session: AsyncSession, security: Security, issuer: OidcIssuer, token: str, client: ClientInfo
) -> Principal:
    async def reject(reason: str) -> NotAuthenticated:
        await record(
            session, security.clock, AuthEventKind.oidc_rejected, client, reason=reason, issuer=issuer.issuer
        )
        return NotAuthenticated("The token is not valid.", invalid_token=True)

    try:
        header = jwt.unverified_header(token)
        kid = header.get("kid")
        key = await security.jwks.key_for(issuer, kid if isinstance(kid, str) else None)
        if key is None:
            raise await reject("unknown kid")
        claims = jwt.decode(
            token, key, issuer=issuer.issuer, audience=issuer.audience, now=security.clock.now()
        )
    except jwt.TokenInvalid as exc:
        raise await reject(exc.reason) from None

    value = claims.get(issuer.claim)
    if not isinstance(value, str) or not value:
        raise await reject(f"claim {issuer.claim} missing")
    condition: ColumnElement[bool]
    if issuer.match == "subject":
        condition = User.id.in_(
            select(ExternalIdentity.user_id).where(
                ExternalIdentity.issuer == issuer.issuer, ExternalIdentity.subject == value
            )
        )
    else:
        # SPID delivers the fiscal number as "TINIT-<codice fiscale>".
        fiscal_code = value.upper().removeprefix("TINIT-")
        condition = User.fiscal_code == fiscal_code
    connection = await session.connection()
    row = (
        await connection.execute(
            select(*_USER_COLUMNS)
            .join(Organization, Organization.id == User.organization_id)
            .where(condition)
        )
    ).one_or_none()
    if row is None:
        raise await reject("no local user")
    if not _user_usable(row):
        raise await reject("user inactive")
    return _user_principal(row)


async def _authenticate_api_token(
    session: AsyncSession, security: Security, secret: str, client: ClientInfo
) -> Principal:
    now = security.clock.now()
    row = (
        await session.execute(
            select(ApiToken, Organization)
            .join(Organization, Organization.id == ApiToken.organization_id)
            .where(ApiToken.secret_hash == secret_hash(secret))
        )
    ).one_or_none()
    reason = (
        "unknown"
        if row is None
        else "revoked"
        if row[0].revoked_at is not None
        else "expired"
        if row[0].expires_at <= now
        else "organization inactive"
        if not row[1].active
        else None
    )
    if reason:
        await record(
            session,
            security.clock,
            AuthEventKind.api_token_rejected,
            client,
            api_token_id=row[0].id if row else None,
            organization_id=row[0].organization_id if row else None,
            reason=reason,
        )
        raise NotAuthenticated("The API token is not valid.", invalid_token=True)
    assert row is not None
    token, organization = row
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
    return Principal(
        kind="api_token",
        id=token.id,
        name=token.name,
        organization_id=organization.id,
        organization_kind=OrganizationKind(organization.kind),
        organization_name=organization.name,
        ambito_id=organization.ambito_id,
        roles=frozenset(),
        scopes=frozenset(Scope(s) for s in token.scopes),
        organization_comune_id=organization.comune_id,
    )


def _user_usable(row: Row[*tuple[Any, ...]]) -> bool:
    """A row with `_USER_COLUMNS`: the user and its organization are active."""
    return bool(row.user_active and row.organization_active)


def _user_principal(row: Row[*tuple[Any, ...]], *, session_id: uuid.UUID | None = None) -> Principal:
    """The principal of a row with `_USER_COLUMNS`."""
    return Principal(
        kind="user",
        id=row.id,
        name=row.full_name,
        organization_id=row.organization_id,
        organization_kind=OrganizationKind(row.organization_kind),
        organization_name=row.organization_name,
        ambito_id=row.ambito_id,
        roles=frozenset(Role(r) for r in row.roles),
        scopes=ALL_SCOPES,
        is_org_admin=row.is_org_admin,
        session_id=session_id,
        organization_comune_id=row.organization_comune_id,
    )
