"""The outbound event catalogue: what each event means and what its payload holds (ids and state)."""

from __future__ import annotations

from typing import Any

from app.core.enums import EventType

_DOSSIER = "01a20096-0bfe-76d6-92f8-3e41de465dcc"
_AMBITO = "01a2008a-8a35-70fc-bf8b-d5489884bd01"


def _example(event_type: EventType, **data: Any) -> dict[str, Any]:
    return {
        "id": "01a200a1-5e0c-7c3f-9a52-2f4b8f0e6b10",
        "type": event_type.value,
        "timestamp": "2026-11-22T09:30:00.123456+00:00",
        "data": {"dossier_id": _DOSSIER, "ambito_id": _AMBITO, **data},
    }


EVENT_CATALOGUE: dict[EventType, dict[str, Any]] = {
    EventType.referral_received: {
        "description": "A referral reached a dossier (new, reopened or already open).",
        "example": _example(
            EventType.referral_received, referral_id="01a20096-0c01-7290-967b-f69c8d39bdcd", state="segnalato"
        ),
    },
    EventType.dossier_routed: {
        "description": "The dossier was routed to a pool (by a rule, a coordinator or an inbound event).",
        "example": _example(
            EventType.dossier_routed,
            routing_id="01a20096-0c11-7c00-8a00-0a0b0c0d0e0f",
            pool_id="01a2008a-9000-7000-8000-000000000001",
            state="segnalato",
        ),
    },
    EventType.dossier_routing_ended: {
        "description": "A routing ended: the pool's members no longer see the dossier.",
        "example": _example(
            EventType.dossier_routing_ended,
            routing_id="01a20096-0c11-7c00-8a00-0a0b0c0d0e0f",
            pool_id="01a2008a-9000-7000-8000-000000000001",
        ),
    },
    EventType.dossier_state_changed: {
        "description": "The dossier moved from one state to another (DESIGN §3).",
        "example": _example(
            EventType.dossier_state_changed, from_state="segnalato", to_state="in_valutazione"
        ),
    },
    EventType.routing_task_updated: {
        "description": "A member organization answered its part of a routing.",
        "example": _example(
            EventType.routing_task_updated, task_id="01a200a0-1111-7222-8333-444455556666", status="accepted"
        ),
    },
    EventType.plan_updated: {
        "description": "Reserved: the individual plan changed (plans are not built yet).",
        "example": _example(EventType.plan_updated, plan_id="…", version=2),
    },
    EventType.intervention_started: {
        "description": "Reserved: an intervention started (interventions are not built yet).",
        "example": _example(EventType.intervention_started, intervention_id="…", kind="sad"),
    },
}
