"""Heartbeats: a model whose policy expects predictions every N minutes and that sent none for
longer is an incident (its service stopped, its pipeline broke), alerted like any finding and
resolved by the next batch. Checked by beat every minute."""

from __future__ import annotations

import datetime as dt

from django.db.models import Max

from audit.store import Actor, RecordedEvent
from monitoring.alerting.domain import AlertStatus, Resolution
from monitoring.alerting.models import Alert
from monitoring.alerting.services import HEARTBEAT, Finding, alert_execute, alert_raise
from monitoring.ingestion.domain import BatchKind
from monitoring.ingestion.models import Batch
from monitoring.registry.models import RegisteredModel
from monitoring.runs.domain import Level

WATCHER = Actor("system", "heartbeat", "Driftledger heartbeat")


def heartbeats_check(now: dt.datetime | None = None) -> list[RecordedEvent]:
    """Raise the heartbeat alert of each watched model silent past its interval; resolve it for
    each model that reported again."""
    from monitoring.policies.services import policy_load

    moment = now or dt.datetime.now(dt.UTC)
    recorded: list[RecordedEvent] = []
    last_batches = dict(
        Batch.objects.filter(kind=BatchKind.PREDICTIONS)
        .values_list("model_id")
        .annotate(last=Max("ingested_at"))
        .values_list("model_id", "last")
    )
    for model, registered_at in RegisteredModel.objects.filter(retired=False).values_list("name", "registered_at"):
        minutes = policy_load(model).policy.get("heartbeat", {}).get("expected_every_minutes")
        finding = _silence(model, last_batches.get(model), registered_at, minutes, moment)
        key = Finding(HEARTBEAT, "predictions", Level.CRITICAL, "").key(model)
        alert = Alert.objects.filter(dedupe_key=key).exclude(status=AlertStatus.RESOLVED).first()
        if finding is not None and alert is None:
            recorded += alert_raise(model=model, finding=finding, actor=WATCHER)
        elif finding is None and alert is not None:
            recorded += alert_execute(str(alert.alert_id), lambda a: a.resolve(how=Resolution.AUTO), actor=WATCHER)
    return recorded


def _silence(
    model: str, last: dt.datetime | None, registered_at: dt.datetime, minutes: int | None, now: dt.datetime
) -> Finding | None:
    """The finding when the model has been silent for longer than `minutes` (none: not watched)."""
    if not minutes:
        return None
    since = last or registered_at
    silent = now - since
    if silent <= dt.timedelta(minutes=minutes):
        return None
    heard = f"since {since:%Y-%m-%d %H:%M} UTC" if last else "since it was registered"
    summary = (
        f"heartbeat: no predictions from {model} for {silent // dt.timedelta(minutes=1):,} minutes "
        f"({heard}); expected every {minutes} minutes"
    )
    return Finding(HEARTBEAT, "predictions", Level.CRITICAL, summary)
