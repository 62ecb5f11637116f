"""Alert commands: raising, updating and auto-resolving from a run's checks or from another
system's alerts; acknowledging, resolving, silencing and escalating by people and by beat.

Deduplication is a database invariant: the read model has a partial unique index on the
dedupe key of unresolved alerts, so two runs raising the same condition at once cannot both
succeed; the loser's transaction rolls back and is replayed onto the open alert."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from audit.aggregates import aggregate_execute, aggregate_load
from audit.envelope import parse_time
from audit.events import Event
from audit.store import Actor, RecordedEvent
from monitoring.alerting.domain import AlertAggregate, AlertRaised, AlertStatus, Resolution, dedupe_key
from monitoring.alerting.models import Alert
from monitoring.runs.domain import Check, Level

ESCALATOR = Actor("system", "escalation", "Driftledger escalation")
RUN_FAILED = "run_failed"  # the check name of the alert raised when a model's run fails
HEARTBEAT = "heartbeat"  # the check name of the alert raised when a model stops reporting


@dataclass(frozen=True)
class Finding:
    """A failing (or cleared) condition as alerting sees it, whatever found it."""

    check: str
    subject: str  # the feature, metric or other thing the condition is about
    severity: Level
    summary: str
    feature: str | None = None
    segment: str | None = None

    @classmethod
    def of(cls, check: Check) -> Finding:
        _, subject, segment = check.condition
        return cls(check.check.value, subject, check.status, _summary(check), check.feature, segment or None)

    def key(self, model: str) -> str:
        return dedupe_key(model, self.check, self.subject, self.segment or "")


def alert_load(alert_id: str) -> AlertAggregate:
    return aggregate_load(AlertAggregate(alert_id))


def alert_execute(
    alert_id: str,
    command: Callable[[AlertAggregate], Sequence[Event]],
    *,
    actor: Actor,
    reason: str | None = None,
    causation: str | None = None,
) -> list[RecordedEvent]:
    return aggregate_execute(
        lambda: AlertAggregate(alert_id), command, actor=actor, reason=reason, causation=causation
    ).recorded


def alert_raise(
    *,
    model: str,
    finding: Finding,
    actor: Actor,
    run_id: str | None = None,
    window_end: str | None = None,
    causation: str | None = None,
) -> list[RecordedEvent]:
    alert_id = str(uuid.uuid4())
    raised = AlertRaised(
        alert_id=alert_id,
        model=model,
        check=finding.check,
        severity=finding.severity,
        summary=finding.summary,
        subject=finding.subject,
        feature=finding.feature,
        segment=finding.segment,
        run_id=run_id,
        window_end=window_end,
    )
    return alert_execute(alert_id, lambda a: a.raise_(raised), actor=actor, causation=causation)


def alerts_from_run(
    *,
    model: str,
    run_id: str,
    checks: Iterable[Check],
    window_end: str | None = None,
    actor: Actor,
    causation: str | None = None,
) -> list[RecordedEvent]:
    """Raise an alert for each failing check that has none open, update the open ones whose
    figure changed, and resolve the open ones whose check passed on this run.

    Alerts follow time: a run over a window that ends before the window an open alert was last
    found in (a backfill, a re-run of an older window) neither updates nor resolves it; what an
    older window shows says nothing about the incident now."""
    checks = list(checks)
    failing = {f.key(model): f for f in (Finding.of(c) for c in checks if c.status.failing)}
    evaluated = {c.check.value for c in checks} | {RUN_FAILED}  # a completed run: the model's runs work again
    open_alerts = {a.dedupe_key: a for a in Alert.objects.filter(model_name=model).exclude(status=AlertStatus.RESOLVED)}
    ends = parse_time(window_end) if window_end else None
    recorded: list[RecordedEvent] = []
    for key, finding in failing.items():
        existing = open_alerts.get(key)
        if existing is None:
            recorded += alert_raise(
                model=model, finding=finding, actor=actor, run_id=run_id, window_end=window_end, causation=causation
            )
        elif _current(existing, ends):
            update = functools.partial(
                AlertAggregate.update,
                severity=finding.severity,
                summary=finding.summary,
                run_id=run_id,
                window_end=window_end,
            )
            recorded += alert_execute(str(existing.alert_id), update, actor=actor, causation=causation)
    for key, alert in open_alerts.items():
        if key not in failing and alert.check_name in evaluated and _current(alert, ends):
            recorded += alert_execute(
                str(alert.alert_id),
                lambda a: a.resolve(how=Resolution.AUTO, run_id=run_id),
                actor=actor,
                causation=causation,
            )
    return recorded


def alerts_from_failed_run(
    *, model: str, run_id: str, error: str, window_end: str | None, actor: Actor, causation: str | None = None
) -> list[RecordedEvent]:
    """A run that failed raises the model's run-failure alert (critical), or updates the open
    one; the next completed run resolves it."""
    finding = Finding(RUN_FAILED, "runs", Level.CRITICAL, f"run {run_id[:8]} failed: {error[:500]}")
    existing = Alert.objects.filter(dedupe_key=finding.key(model)).exclude(status=AlertStatus.RESOLVED).first()
    if existing is None:
        return alert_raise(
            model=model, finding=finding, actor=actor, run_id=run_id, window_end=window_end, causation=causation
        )
    update = functools.partial(
        AlertAggregate.update, severity=finding.severity, summary=finding.summary, run_id=run_id, window_end=window_end
    )
    return alert_execute(str(existing.alert_id), update, actor=actor, causation=causation)


def _current(alert: Alert, window_end: dt.datetime | None) -> bool:
    """Whether a run over a window ending at `window_end` speaks for the alert's condition now."""
    return alert.window_end is None or (window_end is not None and window_end >= alert.window_end)


def alerts_from_external(*, model: str, finding: Finding, firing: bool, actor: Actor) -> list[RecordedEvent]:
    """An alert from another system (Alertmanager): open or update it while firing, resolve it when not."""
    existing = Alert.objects.filter(dedupe_key=finding.key(model)).exclude(status=AlertStatus.RESOLVED).first()
    if firing and existing is None:
        return alert_raise(model=model, finding=finding, actor=actor)
    if firing:
        return alert_execute(
            str(existing.alert_id),
            lambda a: a.update(severity=finding.severity, summary=finding.summary, run_id=None),
            actor=actor,
        )
    if existing is not None:
        return alert_execute(str(existing.alert_id), lambda a: a.resolve(how=Resolution.AUTO), actor=actor)
    return []


def alert_open(key: str) -> bool:
    return Alert.objects.filter(dedupe_key=key).exclude(status=AlertStatus.RESOLVED).exists()


def alerts_escalate(
    *, after_minutes: int, now: dt.datetime | None = None, model: str | None = None
) -> list[RecordedEvent]:
    """Escalate every alert (of `model`, or of every model) still open and unacknowledged
    `after_minutes` after it was raised."""
    moment = now or dt.datetime.now(dt.UTC)
    due = Alert.objects.filter(
        status=AlertStatus.OPEN,
        escalated_at__isnull=True,
        raised_at__lte=moment - dt.timedelta(minutes=after_minutes),
    )
    if model is not None:
        due = due.filter(model_name=model)
    recorded = []
    for alert_id in due.values_list("alert_id", flat=True):
        recorded += alert_execute(str(alert_id), lambda a: a.escalate(after_minutes), actor=ESCALATOR)
    return recorded


def alerts_escalate_by_policy(now: dt.datetime | None = None) -> list[RecordedEvent]:
    """Escalation per model, after its policy's escalate_after_minutes (none: never)."""
    from monitoring.policies.services import policy_load

    recorded = []
    waiting = Alert.objects.filter(status=AlertStatus.OPEN, escalated_at__isnull=True)
    for model in waiting.values_list("model_name", flat=True).distinct():
        minutes = policy_load(model).policy.get("escalate_after_minutes")
        if minutes:
            recorded += alerts_escalate(after_minutes=minutes, now=now, model=model)
    return recorded


def _summary(check: Check) -> str:
    figure = f"{check.metric or ''} {check.value:.4g}" if check.value is not None else str(check.metric or "")
    bound = f" (threshold {check.threshold:.4g})" if check.threshold is not None else ""
    return f"{check.check.value} on {check.subject}: {figure}{bound}"
