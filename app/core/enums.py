"""Names that are data: organization kinds, roles, token scopes, auth event kinds.

They are English identifiers (DESIGN §2, §4); the SPA shows them with Italian labels.
"""

from __future__ import annotations

import enum


class OrganizationKind(enum.StrEnum):
    comune = "comune"
    ufficio_di_piano = "ufficio_di_piano"
    asst = "asst"
    ats = "ats"
    afol = "afol"
    cooperativa = "cooperativa"
    associazione = "associazione"
    azienda = "azienda"


class Role(enum.StrEnum):
    platform_admin = "platform_admin"  # configures the platform; sees no case content
    coordinator = "coordinator"  # Ufficio di Piano: pools, rules, aggregated reports
    social_worker = "social_worker"  # assistente sociale of a comune
    health_operator = "health_operator"  # ASST services: SerT, NOA, CPS, ADI, UONPIA…
    employment_operator = "employment_operator"  # AFOL / SIL
    coop_operator = "coop_operator"  # social cooperative
    home_care = "home_care"  # ASA/OSS: tasks only
    dpo = "dpo"  # data protection officer: audit log, no content


class Scope(enum.StrEnum):
    """What an API token may do; a user's reach comes from its roles instead."""

    referrals_read = "referrals:read"
    referrals_write = "referrals:write"
    dossiers_read = "dossiers:read"
    interventions_read = "interventions:read"
    interventions_write = "interventions:write"
    placements_read = "placements:read"
    placements_write = "placements:write"
    community_resources_read = "community-resources:read"
    community_resources_write = "community-resources:write"
    webhooks_manage = "webhooks:manage"


class AuthEventKind(enum.StrEnum):
    login_succeeded = "login_succeeded"
    login_failed = "login_failed"
    login_throttled = "login_throttled"
    refresh_succeeded = "refresh_succeeded"
    refresh_reuse_detected = "refresh_reuse_detected"
    refresh_rejected = "refresh_rejected"
    logout = "logout"
    access_token_rejected = "access_token_rejected"
    oidc_rejected = "oidc_rejected"
    api_token_created = "api_token_created"
    api_token_revoked = "api_token_revoked"
    api_token_rejected = "api_token_rejected"


class DossierState(enum.StrEnum):
    """DESIGN §3, in Italian as the SPA shows them."""

    segnalato = "segnalato"
    in_valutazione = "in_valutazione"
    in_pool = "in_pool"
    progetto_attivo = "progetto_attivo"
    sospeso = "sospeso"
    valutazione_finale = "valutazione_finale"
    chiuso = "chiuso"
    reindirizzato = "reindirizzato"
    ritirato = "ritirato"
    trasferito = "trasferito"


class Section(enum.StrEnum):
    """Parts of a dossier that are shown or hidden as a whole (oscuramento)."""

    registry = "registry"
    referral = "referral"
    assessment = "assessment"
    plan = "plan"
    interventions = "interventions"
    health = "health"
    violence = "violence"
    judicial = "judicial"


class ConfidentialityLabel(enum.StrEnum):
    """HL7 v3 ActCode confidentiality codes for special categories, as the ASST exchange uses them."""

    ETH = "ETH"  # substance abuse (SerT, NOA)
    HIV = "HIV"
    PSY = "PSY"  # psychiatry / mental health (CPS)
    SDV = "SDV"  # sexual and domestic violence


class Compartment(enum.StrEnum):
    ordinary = "ordinary"
    violence = "violence"  # VIOLA anti-violence network
    judicial = "judicial"  # minors with a court order (GRUPPO MINORI)


class NeedArea(enum.StrEnum):
    lavoro = "lavoro"
    casa = "casa"
    poverta = "poverta"
    disabilita = "disabilita"
    salute_mentale = "salute_mentale"
    dipendenze = "dipendenze"
    violenza = "violenza"
    minori = "minori"
    anziani = "anziani"


class Urgency(enum.StrEnum):
    ordinaria = "ordinaria"
    prioritaria = "prioritaria"
    urgente = "urgente"


class Sex(enum.StrEnum):
    F = "F"
    M = "M"


class NoFiscalCodeReason(enum.StrEnum):
    recent_arrival = "recent_arrival"  # arrived in Italy, code not yet assigned
    newborn = "newborn"
    not_known = "not_known"  # the referrer does not know it (yet)
    anonymous_protection = "anonymous_protection"  # e.g. a woman in an anti-violence shelter


class HouseholdRelation(enum.StrEnum):
    intestatario = "intestatario"  # head of the household
    coniuge = "coniuge"
    convivente = "convivente"
    figlio = "figlio"
    genitore = "genitore"
    fratello_sorella = "fratello_sorella"
    nonno = "nonno"
    nipote = "nipote"
    altro_parente = "altro_parente"
    altro = "altro"


class ConsentPurpose(enum.StrEnum):
    presa_in_carico = "presa_in_carico"  # taking charge of the case together
    monitoraggio = "monitoraggio"
    valutazione = "valutazione"  # evaluation of outcomes
    ricerca = "ricerca"  # pseudonymised research (University of Padova)


class LegalBasis(enum.StrEnum):
    consent = "consent"  # GDPR art. 6.1.a / 9.2.a
    legal_obligation = "legal_obligation"  # art. 6.1.c
    public_interest = "public_interest"  # art. 6.1.e / 9.2.g
    health_care = "health_care"  # art. 9.2.h
    judicial_order = "judicial_order"  # court order (Tribunale per i Minorenni)


class ParticipantBasis(enum.StrEnum):
    """Why an organization takes part in a dossier."""

    pool = "pool"  # member of a pool the dossier is routed to
    provider = "provider"  # provides one of its interventions
    invited = "invited"  # specialist service invited to the pool for this dossier ("su invito")


class AuditAction(enum.StrEnum):
    read = "read"
    list = "list"
    search = "search"
    create = "create"
    update = "update"
    transition = "transition"
    break_glass = "break_glass"
    export = "export"


class PoolArea(enum.StrEnum):
    lavoro = "lavoro"  # SIL
    domiciliarita = "domiciliarita"  # SID, home care
    poverta = "poverta"
    minori = "minori"  # GRUPPO MINORI
    violenza = "violenza"  # VIOLA network
    giovani = "giovani"  # RETI


class PoolRole(enum.StrEnum):
    referente_comunale = "referente_comunale"
    referente_cooperativa = "referente_cooperativa"
    referente_afol = "referente_afol"
    referente_asst = "referente_asst"
    asa_oss = "asa_oss"
    specialista_su_invito = "specialista_su_invito"


class TaskStatus(enum.StrEnum):
    """Each member organization's answer to a routing, as FHIR Task.status."""

    requested = "requested"
    accepted = "accepted"
    declined = "declined"
    completed = "completed"
    cancelled = "cancelled"


class MeetingStatus(enum.StrEnum):
    scheduled = "scheduled"
    held = "held"
    cancelled = "cancelled"


class MeetingDecision(enum.StrEnum):
    new_objective = "new_objective"
    start_intervention = "start_intervention"
    reroute = "reroute"
    close = "close"
    other = "other"


class InstrumentKind(enum.StrEnum):
    pre_assessment = "pre_assessment"
    competence = "competence"


class Viewpoint(enum.StrEnum):
    """Whose voice an answer gives: the respondent's own, or an "other" (family member, operator)."""

    respondent = "respondent"
    other = "other"


class PreAssessmentStatus(enum.StrEnum):
    draft = "draft"
    final = "final"


class Phase(enum.StrEnum):
    T0 = "T0"
    in_itinere = "in_itinere"
    ex_post = "ex_post"


class Competence(enum.StrEnum):
    """The five competences of the Modello Operativo Dialogico (DESIGN §2)."""

    anticipation = "anticipation"  # anticipazione degli aspetti critici
    strategies = "strategies"  # individuazione di strategie a fronte di un obiettivo
    objective_use = "objective_use"  # uso dell'obiettivo
    role_use = "role_use"  # uso dei ruoli adeguati ad una richiesta
    context_evaluation = "context_evaluation"  # valutazione del contesto


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # waiting for its turn (or its next attempt)
    in_progress = "in_progress"  # claimed by a worker, under a lease
    delivered = "delivered"
    dead = "dead"  # gave up after the last attempt; can be replayed


class SubscriptionStatus(enum.StrEnum):
    active = "active"
    paused = "paused"


class EventType(enum.StrEnum):
    """Outbound integration events (docs/integration.md): ids, type and state only, never content."""

    referral_received = "referral.received"
    dossier_routed = "dossier.routed"
    dossier_routing_ended = "dossier.routing_ended"
    dossier_state_changed = "dossier.state_changed"
    routing_task_updated = "routing_task.updated"
    plan_updated = "plan.updated"
    intervention_started = "intervention.started"


class InboundStatus(enum.StrEnum):
    applied = "applied"
    rejected = "rejected"
