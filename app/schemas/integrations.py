"""Webhook subscriptions and deliveries, inbound senders: the API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from app.core.enums import DeliveryStatus, EventType, SubscriptionStatus
from app.schemas.common import InputModel, Name, OutputModel


class SubscriptionCreate(InputModel):
    url: str = Field(min_length=8, max_length=2000, description="https, on the allow-list, a public address.")
    event_types: list[EventType] = Field(min_length=1, max_length=len(EventType))
    organization_id: uuid.UUID | None = Field(
        default=None, description="Coordinators only; default: your own."
    )


class SubscriptionRead(OutputModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    url: str
    event_types: list[str]
    status: SubscriptionStatus
    paused_reason: str | None
    failure_streak: int = Field(
        description="Failed deliveries in a row; the subscription pauses itself after a long one."
    )
    last_success_at: datetime | None = Field(
        description="The last successful delivery, to within 10 seconds (not rewritten on every one)."
    )
    last_failure_at: datetime | None
    previous_valid_until: datetime | None = Field(description="Until then the previous secret signs too.")
    created_at: datetime


class SubscriptionWithSecret(SubscriptionRead):
    secret: str = Field(description="`whsec_…`: shown once, now. Verify signatures with it.")


class PauseRequest(InputModel):
    reason: str = Field(min_length=3, max_length=500, pattern=r"^[^\x00]*$")


class DeliveryRead(OutputModel):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID = Field(description="The webhook-id: receivers de-duplicate on it.")
    event_type: str
    dossier_id: uuid.UUID | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]


class DeliveryList(OutputModel):
    items: list[DeliveryRead]
    next_cursor: str | None


class EventTypeInfo(OutputModel):
    type: str
    description: str
    example: dict[str, Any]


class SenderCreate(InputModel):
    organization_id: uuid.UUID
    name: Name


class SenderRead(OutputModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    revoked_at: datetime | None
    previous_valid_until: datetime | None
    created_at: datetime


class SenderWithSecret(SenderRead):
    secret: str = Field(description="`whsec_…`: shown once. Sign your events with it.")


class InboundAccepted(OutputModel):
    status: str
    event_id: str
    type: str
    result: dict[str, Any]
