"""Outbound webhook subscriptions and deliveries; inbound senders and the events they sent."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.enums import DeliveryStatus, InboundStatus, SubscriptionStatus
from app.models.base import Base, IdMixin, TimestampMixin, str_enum


def _same_ambito_org(name: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["organization_id", "ambito_id"],
        ["organization.id", "organization.ambito_id"],
        name=name,
        ondelete="RESTRICT",
    )


class WebhookSubscription(IdMixin, TimestampMixin, Base):
    __tablename__ = "webhook_subscription"

    ambito_id: Mapped[uuid.UUID]
    organization_id: Mapped[uuid.UUID]
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    # The signing secret, encrypted with the server's data key; shown once in clear at creation.
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    # After a rotation the old secret still signs (beside the new one) until then.
    previous_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[SubscriptionStatus] = mapped_column(str_enum(SubscriptionStatus, "subscription_status"))
    paused_reason: Mapped[str | None] = mapped_column(String(500))
    failure_streak: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by_kind: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[uuid.UUID]
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_webhook_subscription_ambito", "ambito_id", postgresql_where=text("deleted_at IS NULL")),
        _same_ambito_org("fk_webhook_subscription_org_same_ambito"),
    )


class WebhookDelivery(IdMixin, Base):
    """One event for one subscription. The event's id is the `webhook-id` the receiver dedups on."""

    __tablename__ = "webhook_delivery"

    ambito_id: Mapped[uuid.UUID]
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscription.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID]
    event_seq: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(40))
    dossier_id: Mapped[uuid.UUID | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, "delivery_status"))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default="0", default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("uq_webhook_delivery_event", "subscription_id", "event_id", unique=True),
        Index(
            "ix_webhook_delivery_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'in_progress')"),
        ),
        Index(
            "ix_webhook_delivery_open_per_dossier",
            "subscription_id",
            "dossier_id",
            "event_seq",
            postgresql_where=text("status IN ('pending', 'in_progress')"),
        ),
        Index("ix_webhook_delivery_subscription", "subscription_id", "id"),
    )


class InboundSender(IdMixin, TimestampMixin, Base):
    """An information system (an ASST's) allowed to send events, each with its own signing secret."""

    __tablename__ = "inbound_sender"

    ambito_id: Mapped[uuid.UUID]
    organization_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(200))
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (_same_ambito_org("fk_inbound_sender_org_same_ambito"),)


class InboundEvent(IdMixin, Base):
    """Every event received, applied or not: idempotency on (sender, event id), and inspection."""

    __tablename__ = "inbound_event"

    ambito_id: Mapped[uuid.UUID]
    sender_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inbound_sender.id", ondelete="RESTRICT"))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str | None] = mapped_column(String(80))
    body_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[InboundStatus] = mapped_column(str_enum(InboundStatus, "inbound_status"))
    response_status: Mapped[int] = mapped_column(SmallInteger)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("uq_inbound_event_sender_event", "sender_id", "event_id", unique=True),)
