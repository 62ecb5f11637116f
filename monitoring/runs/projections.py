"""The read model of runs, kept in step with the run streams."""

from __future__ import annotations

from typing import Any

from audit import projections
from audit.envelope import parse_time
from audit.store import RecordedEvent
from monitoring.runs.domain import (
    Level,
    PerformanceRealized,
    RunCompleted,
    RunCompletedV1,
    RunDiagnosed,
    RunDiagnosisRevised,
    RunFailed,
    RunStarted,
    RunStartedV1,
    RunStatus,
)
from monitoring.runs.models import Run


def _started(stored: RunStarted | RunStartedV1, recorded: RecordedEvent) -> None:
    event = stored.upcast()
    assert isinstance(event, RunStarted)
    Run.objects.create(
        revision=event.revision or 0,
        revises=event.revises,
        run_id=event.run_id,
        model_name=event.model,
        policy_version=event.policy_version,
        window_start=parse_time(event.window.start),
        window_end=parse_time(event.window.end),
        status=RunStatus.RUNNING,
        started_at=recorded.occurred_at,
        started_seq=recorded.seq,
    )


def _completed(event: RunCompleted | RunCompletedV1, recorded: RecordedEvent) -> None:
    checks: list[dict[str, Any]] = recorded.payload["checks"]  # as signed, in either schema
    Run.objects.filter(run_id=event.run_id).update(
        status=RunStatus.COMPLETED,
        level=Level.worst(c["status"] for c in checks if c.get("status") in set(Level)),
        checks=checks,
        result_digest=event.result_digest or "",
        input_digests=event.input_digests or [],
        finished_seq=recorded.seq,
        finished_event_id=recorded.event_id,
    )


def _diagnosed(event: RunDiagnosed, recorded: RecordedEvent) -> None:
    diagnosis = event.model_dump(mode="json", exclude={"run_id", "model"})
    Run.objects.filter(run_id=event.run_id).update(diagnosis={"new_segments": [], **diagnosis})


def _revised(event: RunDiagnosisRevised, recorded: RecordedEvent) -> None:
    """The run's checks and diagnosis become the revised ones; the first stay in the log."""
    diagnosis = event.model_dump(mode="json", include={"cause", "scope", "evidence", "actions", "new_segments"})
    checks: list[dict[str, Any]] = recorded.payload["checks"]
    Run.objects.filter(run_id=event.run_id).update(
        checks=checks,
        level=Level.worst(c["status"] for c in checks),
        diagnosis={
            "new_segments": [],
            **diagnosis,
            "revision": event.revision,
            "revised_at": recorded.occurred_at.isoformat(),
            "labelled_rows": event.labelled_rows,
            "result_digest": event.result_digest,
        },
    )


def _realized(event: PerformanceRealized, recorded: RecordedEvent) -> None:
    Run.objects.filter(run_id=event.run_id).update(realized=event.model_dump(mode="json", exclude={"run_id", "model"}))


def _failed(event: RunFailed, recorded: RecordedEvent) -> None:
    Run.objects.filter(run_id=event.run_id).update(
        status=RunStatus.FAILED, error=event.error, finished_seq=recorded.seq, finished_event_id=recorded.event_id
    )


RUNS = projections.register(
    projections.Projection(
        name="monitoring.runs",
        handlers={
            RunStarted: _started,
            RunStartedV1: _started,
            RunCompleted: _completed,
            RunCompletedV1: _completed,
            RunFailed: _failed,
            RunDiagnosed: _diagnosed,
            RunDiagnosisRevised: _revised,
            PerformanceRealized: _realized,
        },
        models=[Run],
    )
)
