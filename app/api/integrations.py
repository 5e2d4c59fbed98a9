"""Webhook subscriptions and deliveries (outbound), senders and events (inbound, from ASST)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from app.api.deps import NowDep, PageDep, PrincipalDep, SecurityDep, SessionDep
from app.core.enums import DeliveryStatus, EventType, SubscriptionStatus
from app.core.pagination import encode_cursor
from app.core.problems import PROBLEM_MEDIA_TYPE
from app.schemas.integrations import (
    DeliveryList,
    DeliveryRead,
    EventTypeInfo,
    InboundAccepted,
    PauseRequest,
    SenderCreate,
    SenderRead,
    SenderWithSecret,
    SubscriptionCreate,
    SubscriptionRead,
    SubscriptionWithSecret,
)
from app.services.events.catalogue import EVENT_CATALOGUE
from app.services.integrations import inbound, webhooks

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
integrations = APIRouter(prefix="/api/v1/integrations", tags=["integrations"])

Responses = dict[int | str, dict[str, Any]]
_MANAGE: Responses = {403: {"description": "Coordinators, organization admins, tokens with webhooks:manage"}}


@router.get("/event-types", summary="The events snodo sends, with example payloads")
async def list_event_types(principal: PrincipalDep) -> list[EventTypeInfo]:
    return [EventTypeInfo(type=t.value, **EVENT_CATALOGUE[t]) for t in EventType]


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    responses=_MANAGE,
    summary="Subscribe a URL to events; the signing secret is in this response only",
)
async def create_subscription(
    principal: PrincipalDep, session: SessionDep, security: SecurityDep, now: NowDep, body: SubscriptionCreate
) -> SubscriptionWithSecret:
    created = await webhooks.create_subscription(
        session,
        principal,
        security.settings,
        security.vault,
        url=body.url,
        event_types=[e.value for e in body.event_types],
        organization_id=body.organization_id,
        now=now,
    )
    return SubscriptionWithSecret(
        **SubscriptionRead.model_validate(created.subscription).model_dump(), secret=created.secret
    )


@router.get("/subscriptions", responses=_MANAGE, summary="Subscriptions and their health")
async def list_subscriptions(principal: PrincipalDep, session: SessionDep) -> list[SubscriptionRead]:
    return [SubscriptionRead.model_validate(s) for s in await webhooks.list_subscriptions(session, principal)]


@router.get("/subscriptions/{subscription_id}", responses=_MANAGE, summary="One subscription")
async def get_subscription(
    principal: PrincipalDep, session: SessionDep, subscription_id: uuid.UUID
) -> SubscriptionRead:
    return SubscriptionRead.model_validate(
        await webhooks.get_subscription(session, principal, subscription_id)
    )


@router.post(
    "/subscriptions/{subscription_id}/pause", responses=_MANAGE, summary="Stop deliveries (they wait)"
)
async def pause_subscription(
    principal: PrincipalDep, session: SessionDep, subscription_id: uuid.UUID, body: PauseRequest
) -> SubscriptionRead:
    subscription = await webhooks.set_status(
        session, principal, subscription_id, SubscriptionStatus.paused, body.reason
    )
    return SubscriptionRead.model_validate(subscription)


@router.post(
    "/subscriptions/{subscription_id}/resume",
    responses=_MANAGE,
    summary="Deliver again, from where it stopped",
)
async def resume_subscription(
    principal: PrincipalDep, session: SessionDep, subscription_id: uuid.UUID
) -> SubscriptionRead:
    subscription = await webhooks.set_status(
        session, principal, subscription_id, SubscriptionStatus.active, None
    )
    return SubscriptionRead.model_validate(subscription)


@router.post(
    "/subscriptions/{subscription_id}/rotate-secret",
    responses=_MANAGE,
    summary="A new secret; the old one keeps signing beside it for a grace period",
)
async def rotate_subscription_secret(
    principal: PrincipalDep,
    session: SessionDep,
    security: SecurityDep,
    now: NowDep,
    subscription_id: uuid.UUID,
) -> SubscriptionWithSecret:
    created = await webhooks.rotate_secret(
        session, principal, security.settings, security.vault, subscription_id, now=now
    )
    return SubscriptionWithSecret(
        **SubscriptionRead.model_validate(created.subscription).model_dump(), secret=created.secret
    )


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_MANAGE,
    summary="Unsubscribe",
)
async def delete_subscription(
    principal: PrincipalDep, session: SessionDep, now: NowDep, subscription_id: uuid.UUID
) -> None:
    await webhooks.delete_subscription(session, principal, subscription_id, now=now)


@router.get(
    "/deliveries", responses=_MANAGE, summary="Deliveries, newest first, with attempts and last error"
)
async def list_deliveries(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    subscription_id: Annotated[uuid.UUID | None, Query()] = None,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event_type: Annotated[EventType | None, Query()] = None,
) -> DeliveryList:
    rows = await webhooks.list_deliveries(
        session,
        principal,
        subscription_id=subscription_id,
        status=delivery_status,
        event_type=event_type.value if event_type else None,
        after=page.after,
        limit=page.limit + 1,
    )
    items = rows[: page.limit]
    more = len(rows) > page.limit
    return DeliveryList(
        items=[DeliveryRead.model_validate(d) for d in items],
        next_cursor=encode_cursor(items[-1].id) if more else None,
    )


@router.get("/deliveries/{delivery_id}", responses=_MANAGE, summary="One delivery")
async def get_delivery(principal: PrincipalDep, session: SessionDep, delivery_id: uuid.UUID) -> DeliveryRead:
    return DeliveryRead.model_validate(await webhooks.get_delivery(session, principal, delivery_id))


@router.post(
    "/deliveries/{delivery_id}/replay", responses=_MANAGE, summary="Send a delivery again (same webhook-id)"
)
async def replay_delivery(
    principal: PrincipalDep, session: SessionDep, now: NowDep, delivery_id: uuid.UUID
) -> DeliveryRead:
    return DeliveryRead.model_validate(await webhooks.replay(session, principal, delivery_id, now=now))


# ---------------------------------------------------------------------------------------------
# Inbound


@integrations.post(
    "/senders",
    status_code=status.HTTP_201_CREATED,
    responses={403: {"description": "Coordinators only"}},
    summary="Register a system that sends signed events; its secret is in this response only",
)
async def create_sender(
    principal: PrincipalDep, session: SessionDep, security: SecurityDep, body: SenderCreate
) -> SenderWithSecret:
    created = await inbound.create_sender(
        session, principal, security, organization_id=body.organization_id, name=body.name
    )
    return SenderWithSecret(**SenderRead.model_validate(created.sender).model_dump(), secret=created.secret)


@integrations.get(
    "/senders", responses={403: {"description": "Coordinators only"}}, summary="Registered senders"
)
async def list_senders(principal: PrincipalDep, session: SessionDep) -> list[SenderRead]:
    return [SenderRead.model_validate(s) for s in await inbound.list_senders(session, principal)]


@integrations.post(
    "/senders/{sender_id}/rotate-secret",
    responses={403: {"description": "Coordinators only"}},
    summary="A new secret; the old one still verifies for a grace period",
)
async def rotate_sender_secret(
    principal: PrincipalDep, session: SessionDep, security: SecurityDep, now: NowDep, sender_id: uuid.UUID
) -> SenderWithSecret:
    created = await inbound.rotate_sender_secret(session, principal, security, sender_id, now=now)
    return SenderWithSecret(**SenderRead.model_validate(created.sender).model_dump(), secret=created.secret)


@integrations.delete(
    "/senders/{sender_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={403: {"description": "Coordinators only"}},
    summary="Revoke a sender: its next event is refused",
)
async def revoke_sender(
    principal: PrincipalDep, session: SessionDep, now: NowDep, sender_id: uuid.UUID
) -> None:
    await inbound.revoke_sender(session, principal, sender_id, now=now)


@integrations.post(
    "/asst/events",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        400: {"description": "Not UTF-8 / not JSON"},
        401: {"description": "Unsigned, wrongly signed, stale, unknown or revoked sender"},
        409: {"description": "The webhook-id was used with another body"},
        413: {"description": "Larger than the limit (256 KiB by default)"},
        422: {"description": "Unknown event type or wrong fields; stored for inspection, nothing applied"},
    },
    summary="Receive a signed event from an ASST system",
    description=(
        "Headers: `snodo-sender` (your sender id), `webhook-id`, `webhook-timestamp`, `webhook-signature` "
        "(Standard Webhooks). A repeat of the same id and body gets the first answer again."
    ),
)
async def receive_asst_event(
    session: SessionDep, security: SecurityDep, now: NowDep, request: Request
) -> InboundAccepted:
    raw = await request.body()
    answer = await inbound.receive(session, security, headers=dict(request.headers), raw=raw, now=now)
    media = PROBLEM_MEDIA_TYPE if answer.problem else "application/json"
    return JSONResponse(answer.body, status_code=answer.status, media_type=media)  # type: ignore[return-value]
