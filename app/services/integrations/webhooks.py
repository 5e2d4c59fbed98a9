"""Outbound webhooks: subscriptions, the fan-out of outbox events, signatures, URL safety.

An event is written to the outbox and fanned out into one delivery per interested subscription in
the same transaction as the change that causes it: it exists if and only if the change commits.
An organization's subscription receives an event only about a dossier that concerns it now (the
Ufficio di Piano: all of its ambito; a comune: its residents; others: dossiers routed to a pool
they belong to or they take part in, within the citizen's consent). Payloads carry ids, type and
state — never content; receivers fetch details with their own credentials.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import ipaddress
import json
import secrets
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from app.core.enums import DeliveryStatus, EventType, SubscriptionStatus
from app.core.principal import Principal
from app.core.problems import FieldError, NotFound, ValidationFailed, field_error
from app.core.security import Vault
from app.core.settings import Settings
from app.models import Organization, WebhookDelivery, WebhookSubscription
from app.services.access.actions import Action, allowed, require
from app.services.events.outbox import NOTIFY_CHANNEL

SECRET_PREFIX = "whsec_"


class SubscriptionNotFound(NotFound):
    slug = "subscription-not-found"
    title_en = "Webhook subscription not found"
    title_it = "Sottoscrizione non trovata"


class DeliveryNotFound(NotFound):
    slug = "delivery-not-found"
    title_en = "Webhook delivery not found"
    title_it = "Consegna non trovata"


def new_secret() -> str:
    """A new random 256-bit signing secret, prefixed."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: datetime, body: str) -> str:
    """`v1,<base64 HMAC-SHA256>` of `id.timestamp.body`, exactly as the Standard Webhooks spec."""
    return Webhook(secret).sign(msg_id, timestamp, body)


# ---------------------------------------------------------------------------------------------
# URL safety (no SSRF through webhooks)


def _address_allowed(address: str, settings: Settings) -> bool:
    ip = ipaddress.ip_address(address)
    if settings.webhook_allow_private_addresses:
        return not ip.is_unspecified and not ip.is_multicast
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_loopback)


async def resolve(host: str) -> list[str]:
    """The IP addresses a host name resolves to, sorted."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def check_url(url: str, settings: Settings, field: str = "body.url") -> None:
    """https, a host on the allow-list, and only public addresses (unless configured otherwise)."""
    parts = urlsplit(url)
    problem = None
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not settings.webhook_allow_http):
        problem = "Must be an https URL"
    elif not parts.hostname or parts.username or parts.password:
        problem = "Must name a host, without credentials"
    elif parts.fragment:
        problem = "Must not have a fragment"
    else:
        host = parts.hostname.lower()
        if not any(fnmatch.fnmatchcase(host, pattern.lower()) for pattern in settings.webhook_allowed_hosts):
            problem = f"Host {host} is not on the allow-list (SNODO_WEBHOOK_ALLOWED_HOSTS)"
        else:
            try:
                addresses = [host] if _is_ip(host) else await resolve(host)
            except (OSError, UnicodeError):
                addresses = []
            if not addresses:
                problem = f"Host {host} does not resolve"
            elif not all(_address_allowed(a, settings) for a in addresses):
                problem = "The host resolves to a private, loopback or link-local address"
    if problem:
        raise field_error(field, problem, "url_refused")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Who manages which subscriptions


def _managed_organization_ids(principal: Principal) -> frozenset[uuid.UUID] | None:
    """None: every organization of the ambito (coordinators); else the caller's own."""
    if allowed(principal, Action.manage_ambito_webhooks):
        return None
    require(principal, Action.manage_own_webhooks)
    return frozenset({principal.organization_id})


async def _subscription(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID
) -> WebhookSubscription:
    allowed = _managed_organization_ids(principal)
    subscription = await session.get(WebhookSubscription, subscription_id)
    if (
        subscription is None
        or subscription.deleted_at is not None
        or subscription.ambito_id != principal.ambito_id
        or (allowed is not None and subscription.organization_id not in allowed)
    ):
        raise SubscriptionNotFound()
    return subscription


@dataclass(frozen=True)
class Created:
    subscription: WebhookSubscription
    secret: str


def _check_event_types(event_types: Sequence[str]) -> list[str]:
    known = {e.value for e in EventType}
    errors = [
        FieldError(field=f"body.event_types.{i}", message="Not an event type", code="enum")
        for i, event_type in enumerate(event_types)
        if event_type not in known
    ]
    if errors:
        raise ValidationFailed(errors=errors)
    return sorted(set(event_types))


async def create_subscription(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    vault: Vault,
    *,
    url: str,
    event_types: Sequence[str],
    organization_id: uuid.UUID | None,
    now: datetime,
) -> Created:
    """Subscribe an organization to webhook events at a URL; the signing secret is returned once only."""
    allowed = _managed_organization_ids(principal)
    owner_id = organization_id or principal.organization_id
    owner = await session.get(Organization, owner_id)
    if (
        owner is None
        or owner.ambito_id != principal.ambito_id
        or (allowed is not None and owner_id not in allowed)
    ):
        raise field_error("body.organization_id", "Not an organization whose webhooks you manage", "unknown")
    types = _check_event_types(event_types)
    await check_url(url, settings)
    secret = new_secret()
    subscription = WebhookSubscription(
        ambito_id=owner.ambito_id,
        organization_id=owner.id,
        url=url,
        event_types=types,
        secret_encrypted=vault.seal(secret),
        status=SubscriptionStatus.active,
        failure_streak=0,
        created_by_kind=principal.kind,
        created_by_id=principal.id,
    )
    session.add(subscription)
    await session.flush()
    return Created(subscription=subscription, secret=secret)


async def list_subscriptions(session: AsyncSession, principal: Principal) -> Sequence[WebhookSubscription]:
    """List the webhook subscriptions of the ambito the principal manages, deleted ones left out."""
    allowed = _managed_organization_ids(principal)
    statement = select(WebhookSubscription).where(
        WebhookSubscription.ambito_id == principal.ambito_id, WebhookSubscription.deleted_at.is_(None)
    )
    if allowed is not None:
        statement = statement.where(WebhookSubscription.organization_id.in_(allowed))
    return (await session.scalars(statement.order_by(WebhookSubscription.id))).all()


async def get_subscription(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """Read one webhook subscription the principal manages."""
    return await _subscription(session, principal, subscription_id)


async def set_status(
    session: AsyncSession,
    principal: Principal,
    subscription_id: uuid.UUID,
    status: SubscriptionStatus,
    reason: str | None,
) -> WebhookSubscription:
    """Pause or resume a webhook subscription, with the reason for a pause."""
    subscription = await _subscription(session, principal, subscription_id)
    subscription.status = status
    subscription.paused_reason = reason if status == SubscriptionStatus.paused else None
    if status == SubscriptionStatus.active:
        subscription.failure_streak = 0
    await session.flush()
    return subscription


async def rotate_secret(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    vault: Vault,
    subscription_id: uuid.UUID,
    *,
    now: datetime,
) -> Created:
    """A new secret; the old one keeps signing beside it for the grace period."""
    subscription = await _subscription(session, principal, subscription_id)
    secret = new_secret()
    subscription.previous_secret_encrypted = subscription.secret_encrypted
    subscription.previous_valid_until = now + timedelta(seconds=settings.webhook_secret_grace_s)
    subscription.secret_encrypted = vault.seal(secret)
    await session.flush()
    return Created(subscription=subscription, secret=secret)


async def delete_subscription(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID, *, now: datetime
) -> None:
    """Delete a webhook subscription and stop its pending deliveries."""
    subscription = await _subscription(session, principal, subscription_id)
    subscription.deleted_at = now
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription.id,
            WebhookDelivery.status == DeliveryStatus.pending,
        )
        .values(status=DeliveryStatus.dead, last_error="subscription deleted")
    )


# access: deliveries of the caller's own subscriptions: ids and types, no content
async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    *,
    subscription_id: uuid.UUID | None,
    status: DeliveryStatus | None,
    event_type: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> Sequence[WebhookDelivery]:
    """List the webhook deliveries of subscriptions the principal manages, filtered and paged by id."""
    allowed = _managed_organization_ids(principal)
    statement = (
        select(WebhookDelivery)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(WebhookSubscription.ambito_id == principal.ambito_id)
    )
    if allowed is not None:
        statement = statement.where(WebhookSubscription.organization_id.in_(allowed))
    if subscription_id is not None:
        statement = statement.where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status)
    if event_type is not None:
        statement = statement.where(WebhookDelivery.event_type == event_type)
    if after is not None:
        statement = statement.where(WebhookDelivery.id < after)
    return (await session.scalars(statement.order_by(WebhookDelivery.id.desc()).limit(limit))).all()


# access: a delivery of the caller's own subscription: ids and types, no content
async def get_delivery(
    session: AsyncSession, principal: Principal, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Read one webhook delivery of a subscription the principal manages."""
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise DeliveryNotFound()
    try:
        await _subscription(session, principal, delivery.subscription_id)
    except SubscriptionNotFound:
        raise DeliveryNotFound() from None
    return delivery


async def replay(
    session: AsyncSession, principal: Principal, delivery_id: uuid.UUID, *, now: datetime
) -> WebhookDelivery:
    """Send it again (same webhook-id: a receiver that has it already can ignore it)."""
    delivery = await get_delivery(session, principal, delivery_id)
    delivery.status = DeliveryStatus.pending
    delivery.next_attempt_at = now
    delivery.locked_until = None
    delivery.attempts = 0
    await session.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))
    await session.flush()
    return delivery


def compact(payload: object) -> str:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
