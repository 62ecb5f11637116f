"""Alert commands: raising, updating and auto-resolving from a run's checks; acknowledging,
resolving, silencing and escalating by people and by beat.

Deduplication is a database invariant: the read model has a partial unique index on the
dedupe key of unresolved alerts, so two runs raising the same condition at once cannot both
succeed; the loser's transaction rolls back and its task retries onto the open alert."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from django.db import transaction

from audit.selectors import stream_events
from audit.store import Actor, NewEvent, RecordedEvent, append
from monitoring.alerts import AlertAggregate, Change, dedupe_key
from monitoring.models import Alert
from monitoring.notifications import enqueue_notifications

STREAM = "alert"
FAILING = ("warning", "critical")


def alert_load(alert_id: str) -> AlertAggregate:
    return AlertAggregate.replay(alert_id, stream_events(STREAM, alert_id))


def alert_execute(
    alert_id: str,
    command: Callable[[AlertAggregate], list[Change]],
    *,
    actor: Actor,
    reason: str | None = None,
    causation: str | None = None,
) -> list[RecordedEvent]:
    with transaction.atomic():
        alert = alert_load(alert_id)
        changes = command(alert)
        if not changes:
            return []
        events = [
            NewEvent(STREAM, alert_id, kind, payload, actor, reason=reason, causation_id=causation)
            for kind, payload in changes
        ]
        recorded = append(events, expected={(STREAM, alert_id): alert.version})
        enqueue_notifications(recorded)
        return recorded


def alerts_from_run(
    *, model: str, run_id: str, checks: list[dict[str, Any]], actor: Actor, causation: str | None = None
) -> list[RecordedEvent]:
    """Raise an alert for each failing check that has none open, update the open ones whose
    figure changed, and resolve the open ones whose check passed on this run."""
    recorded: list[RecordedEvent] = []
    failing = {_key(model, c): c for c in checks if c.get("status") in FAILING}
    evaluated = {c["check"] for c in checks}
    open_alerts = {a.dedupe_key: a for a in Alert.objects.filter(model_name=model).exclude(status="resolved")}
    for key, check in failing.items():
        severity, summary = check["status"], _summary(check)
        existing = open_alerts.get(key)
        if existing is None:
            recorded += _raise(model, check, key, severity, summary, run_id, actor, causation)
        else:
            recorded += alert_execute(
                str(existing.alert_id),
                lambda a, s=severity, m=summary: a.update(severity=s, summary=m, run_id=run_id),
                actor=actor,
                causation=causation,
            )
    for key, alert in open_alerts.items():
        if key not in failing and alert.check_name in evaluated:
            recorded += alert_execute(
                str(alert.alert_id), lambda a: a.resolve(how="auto", run_id=run_id), actor=actor, causation=causation
            )
    return recorded


def alerts_from_external(*, model: str, check: dict[str, Any], firing: bool, actor: Actor) -> list[RecordedEvent]:
    """An alert from another system (Alertmanager): open or update it while firing, resolve it when not."""
    key = _key(model, check)
    existing = Alert.objects.filter(dedupe_key=key).exclude(status="resolved").first()
    if firing and existing is None:
        return _raise(model, check, key, check["status"], _summary(check), "", actor, None)
    if firing:
        return alert_execute(
            str(existing.alert_id),
            lambda a: a.update(severity=check["status"], summary=_summary(check), run_id=None),
            actor=actor,
        )
    if existing is not None:
        return alert_execute(str(existing.alert_id), lambda a: a.resolve(how="auto"), actor=actor)
    return []


def alerts_escalate(*, after_minutes: int, now: dt.datetime | None = None) -> list[RecordedEvent]:
    """Escalate every alert still open (unacknowledged) after `after_minutes`."""
    moment = now or dt.datetime.now(dt.UTC)
    due = Alert.objects.filter(
        status="open", escalated_at__isnull=True, raised_at__lte=moment - dt.timedelta(minutes=after_minutes)
    )
    recorded = []
    for alert in due:
        recorded += alert_execute(str(alert.alert_id), lambda a: a.escalate(after_minutes), actor=ESCALATOR)
    return recorded


ESCALATOR = Actor("system", "escalation", "Driftledger escalation")


def alerts_escalate_by_policy(now: dt.datetime | None = None) -> list[RecordedEvent]:
    from monitoring.services.policies import policy_load

    recorded = []
    for model in (
        Alert.objects.filter(status="open", escalated_at__isnull=True).values_list("model_name", flat=True).distinct()
    ):
        minutes = policy_load(model).policy.get("escalate_after_minutes")
        if minutes:
            recorded += alerts_escalate(after_minutes=minutes, now=now, model=model)
    return recorded


def _raise(model, check, key, severity, summary, run_id, actor, causation) -> list[RecordedEvent]:
    alert_id = str(uuid.uuid4())
    payload = {"alert_id": alert_id, "model": model, "check": check["check"], "severity": severity, "summary": summary}
    if check.get("feature"):
        payload["feature"] = check["feature"]
    if check.get("segment"):
        payload["segment"] = check["segment"]
    if run_id:
        payload["run_id"] = run_id
    with transaction.atomic():
        event = NewEvent(STREAM, alert_id, "monitoring.AlertRaised", payload, actor, causation_id=causation)
        recorded = append([event], expected={(STREAM, alert_id): 0})
        Alert.objects.filter(alert_id=alert_id).update(dedupe_key=key)
        enqueue_notifications(recorded)
        return recorded


def _key(model: str, check: dict[str, Any]) -> str:
    return dedupe_key(model, check["check"], check.get("feature") or check.get("metric", ""), check.get("segment", ""))


def _summary(check: dict[str, Any]) -> str:
    subject = check.get("feature") or check.get("segment") or check.get("metric", "")
    value = check.get("value")
    figure = (
        f"{check.get('metric', '')} {value:.4g}" if isinstance(value, int | float) else str(check.get("metric", ""))
    )
    threshold = check.get("threshold")
    bound = f" (threshold {threshold:.4g})" if isinstance(threshold, int | float) else ""
    return f"{check['check']} on {subject}: {figure}{bound}"
