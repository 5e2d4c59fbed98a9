"""ORM models; importing this package registers every table on `Base.metadata`."""

from app.models.api_token import ApiToken
from app.models.assessment import CompetenceEvaluation, Instrument, PreAssessment, PreAssessmentAnswer
from app.models.audit import AuditChainHead, AuditEvent
from app.models.auth import AuthEvent, AuthSession, RefreshToken
from app.models.base import Base
from app.models.consent import Consent
from app.models.dossier import BreakGlass, Dossier, DossierEntry, DossierEvent, DossierParticipant
from app.models.organization import Organization
from app.models.outbox import OutboxEvent
from app.models.person import Household, Person, PersonNameWord
from app.models.pool import (
    DossierRouting,
    Pool,
    PoolComune,
    PoolMeeting,
    PoolMeetingItem,
    PoolMember,
    RoutingRule,
    RoutingTask,
)
from app.models.referral import IdempotencyRecord, Referral, ReferralForm
from app.models.territory import Ambito, Comune
from app.models.user import ExternalIdentity, User
from app.models.webhook import InboundEvent, InboundSender, WebhookDelivery, WebhookSubscription

__all__ = [
    "Ambito",
    "ApiToken",
    "AuditChainHead",
    "AuditEvent",
    "AuthEvent",
    "AuthSession",
    "Base",
    "BreakGlass",
    "CompetenceEvaluation",
    "Comune",
    "Consent",
    "Dossier",
    "DossierEntry",
    "DossierEvent",
    "DossierParticipant",
    "DossierRouting",
    "ExternalIdentity",
    "Household",
    "IdempotencyRecord",
    "InboundEvent",
    "InboundSender",
    "Instrument",
    "Organization",
    "OutboxEvent",
    "Person",
    "PersonNameWord",
    "Pool",
    "PoolComune",
    "PoolMeeting",
    "PoolMeetingItem",
    "PoolMember",
    "PreAssessment",
    "PreAssessmentAnswer",
    "Referral",
    "ReferralForm",
    "RefreshToken",
    "RoutingRule",
    "RoutingTask",
    "User",
    "WebhookDelivery",
    "WebhookSubscription",
]
