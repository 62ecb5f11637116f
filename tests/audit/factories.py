"""Small builders of events for tests."""

from __future__ import annotations

import uuid

from audit.store import Actor, NewEvent

ALICE = Actor("user", "alice", "Alice Martin")


def alert_event(stream_id: str | None = None, *, summary: str = "PSI 0.31 on income", **extra) -> NewEvent:
    alert_id = stream_id or str(uuid.uuid4())
    payload = {
        "alert_id": alert_id,
        "model": "credit",
        "check": "feature_drift",
        "severity": "critical",
        "summary": summary,
        **extra,
    }
    return NewEvent("alert", alert_id, "monitoring.AlertRaised", payload, ALICE)


def threshold_event(model: str = "credit", new: float = 0.2) -> NewEvent:
    return NewEvent(
        "policy",
        model,
        "monitoring.ThresholdChanged",
        {"model": model, "check": "feature_drift", "metric": "psi", "previous": 0.25, "new": new},
        ALICE,
        reason="tighten",
    )
