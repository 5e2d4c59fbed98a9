"""The outbox: integration events written in the transaction of the change, fanned out to subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import any_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.enums import DeliveryStatus
from app.models import Dossier, Organization, OutboxEvent, WebhookDelivery, WebhookSubscription
from app.services.access import policy

NOTIFY_CHANNEL = "snodo_webhooks"  # the delivery workers LISTEN here


async def emit(
    session: AsyncSession, dossier: Dossier, event_type: str, *, now: datetime, **payload: Any
) -> None:
    """Queue an integration event in this transaction: it exists if and only if the change commits.

    Written under the dossier's row lock, so the events of one dossier are numbered (`seq`) in
    the order their transactions commit; deliveries of one dossier follow that order."""
    await session.execute(select(Dossier.id).where(Dossier.id == dossier.id).with_for_update())
    body = {"dossier_id": str(dossier.id), "ambito_id": str(dossier.ambito_id), **payload}
    event = OutboxEvent(
        ambito_id=dossier.ambito_id,
        event_type=event_type,
        dossier_id=dossier.id,
        payload=body,
        created_at=now,
    )
    session.add(event)
    await session.flush()
    await fan_out(session, event, dossier, now=now)


# ---------------------------------------------------------------------------------------------
# Fan-out, in the transaction of the change


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """The JSON envelope (id, type, timestamp, data) an outbox event is delivered in."""
    return {
        "id": str(event.id),
        "type": event.event_type,
        "timestamp": event.created_at.isoformat(),
        "data": event.payload,
    }


async def fan_out(session: AsyncSession, event: OutboxEvent, dossier: Dossier, *, now: datetime) -> int:
    """Queue an event's delivery to each subscription for its type concerned by the dossier; count."""
    subscriptions = (
        await session.execute(
            select(WebhookSubscription, Organization)
            .join(Organization, Organization.id == WebhookSubscription.organization_id)
            .where(
                WebhookSubscription.ambito_id == event.ambito_id,
                WebhookSubscription.deleted_at.is_(None),
                literal(event.event_type) == any_(WebhookSubscription.event_types),
                Organization.active,
            )
        )
    ).all()
    queued = 0
    body = envelope(event)
    for subscription, organization in subscriptions:
        if not await policy.organization_concerned(session, organization, dossier, now):
            continue
        session.add(
            WebhookDelivery(
                ambito_id=event.ambito_id,
                subscription_id=subscription.id,
                event_id=event.id,
                event_seq=event.seq,
                event_type=event.event_type,
                dossier_id=event.dossier_id,
                payload=body,
                status=DeliveryStatus.pending,
                attempts=0,
                next_attempt_at=now,
            )
        )
        queued += 1
    if queued:
        await session.flush()
        await session.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))
    return queued
