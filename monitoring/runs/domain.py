"""A monitoring run's stream ("run", run id): its events, the shape of a check, and the run
aggregate that says which event may follow which. Pure.

    (none) ──start──▶ running ──complete──▶ completed ──diagnose──▶ (diagnosed)
                         └──────fail──────▶ failed        └──realize, revise (labels arrived)──▶ …

A re-run of a window is another run (another stream), whose RunStarted names the first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from audit.envelope import format_time
from audit.errors import InvalidCommand
from audit.events import Choice, Closed, Context, Event, Shape, Timestamp, UuidText, event_type

STREAM = "run"
RUN_NAMESPACE = uuid.UUID("5d0c7f0e-6a4e-4f6b-9d43-2f1f3b7a9c11")


class Level(Closed):
    """How bad a check's finding is; alerts carry the failing levels as their severity."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def failing(self) -> bool:
        return self is not Level.OK

    @classmethod
    def worst(cls, levels: Iterable[str]) -> Level:
        order = list(cls)
        return max((cls(level) for level in levels), key=order.index, default=cls.OK)


class RunStatus(Closed):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class CheckKind(Closed):
    DATA_QUALITY = "data_quality"
    FEATURE_DRIFT = "feature_drift"
    PREDICTION_DRIFT = "prediction_drift"
    LABEL_DRIFT = "label_drift"
    PERFORMANCE = "performance"
    ESTIMATED_PERFORMANCE = "estimated_performance"
    KPIS = "kpis"
    SEGMENTS = "segments"


class Cause(Closed):
    DATA_QUALITY = "data_quality"
    COVARIATE_SHIFT = "covariate_shift"
    PRIOR_SHIFT = "prior_shift"
    CONCEPT_DRIFT = "concept_drift"
    USER_BEHAVIOUR_CHANGE = "user_behaviour_change"
    NO_PROBLEM = "no_problem"


def run_id_for(model: str, policy_version: int, start: Any, end: Any, revision: int = 0) -> str:
    """A run is identified by (model, policy version, window) and, for a re-run a person asked
    for, its revision: the same run is recorded once."""
    name = f"{model}|{policy_version}|{format_time(start)}|{format_time(end)}"
    return str(uuid.uuid5(RUN_NAMESPACE, name if revision == 0 else f"{name}|revision {revision}"))


class Check(Shape):
    """One figure a run measured and how it was judged. Which fields are set depends on the kind:
    drift has a test, p-value and effect threshold; performance and KPIs a reference and a drop;
    segments name their segment; data quality a count and examples."""

    check: Choice[CheckKind]
    status: Choice[Level]
    feature: str | None = None
    metric: str | None = None
    segment: str | None = None
    test: str | None = None
    value: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    reference: float | None = None
    drop: float | None = None
    lower: float | None = None
    upper: float | None = None
    count: int | None = None
    labelled_rows: int | None = None
    examples: list[str] | None = None

    @property
    def subject(self) -> str:
        """What the check is about: its feature, else its segment, else its metric."""
        return self.feature or self.segment or self.metric or ""

    @property
    def condition(self) -> tuple[str, str, str]:
        """What makes two findings the same condition: the check, its feature or metric, its segment."""
        return (self.check.value, self.feature or self.metric or "", self.segment or "")


class RunWindow(Shape):
    start: Timestamp
    end: Timestamp


@event_type("monitoring.RunStarted")
class RunStartedV1(Event):
    """Schema 1: every run the first of its window (kept for the events written with it)."""

    routine: ClassVar[bool] = True
    run_id: str
    model: str
    policy_version: int
    window: RunWindow

    def upcast(self) -> RunStarted:
        return RunStarted(run_id=self.run_id, model=self.model, policy_version=self.policy_version, window=self.window)

    def describe(self, about: Context) -> str:
        return self.upcast().describe(about)


@event_type("monitoring.RunStarted", schema=2)
class RunStarted(Event):
    """A monitoring run begins on a window of the model's data; a re-run a person asked for
    carries its revision (1, 2, …) and the id of the window's first run, which it does not replace."""

    routine: ClassVar[bool] = True
    run_id: str
    model: str
    policy_version: int
    window: RunWindow
    revision: int | None = None
    revises: UuidText | None = None

    def describe(self, about: Context) -> str:
        again = f" again (revision {self.revision} of run {(self.revises or '')[:8]})" if self.revision else ""
        return (
            f"{about.who} started run {self.run_id[:8]} of {self.model} on {self.window.start} to "
            f"{self.window.end}{again} (policy version {self.policy_version})"
        )


@event_type("monitoring.RunCompleted", schema=1)
class RunCompletedV1(Event):
    """Schema 1: the checks as free-form objects (kept for the events written with it)."""

    routine: ClassVar[bool] = True
    run_id: str
    model: str
    status: str
    checks: list[dict[str, Any]]
    result_digest: str | None = None
    input_digests: list[str] | None = None

    def describe(self, about: Context) -> str:
        flagged = [c for c in self.checks if c.get("status") not in ("ok", None)]
        return (
            f"{about.who} completed run {self.run_id[:8]} of {self.model}: "
            f"{len(self.checks)} checks, {len(flagged)} flagged"
        )


@event_type("monitoring.RunCompleted", schema=2)
class RunCompleted(Event):
    """A monitoring run finished; each check carries its figure, threshold and level. The full
    result is the content-addressed file `result_digest`; `input_digests` name every batch read."""

    routine: ClassVar[bool] = True
    run_id: str
    model: str
    status: Choice[RunStatus]
    checks: list[Check]
    result_digest: str | None = None
    input_digests: list[str] | None = None

    @property
    def level(self) -> Level:
        return Level.worst(check.status for check in self.checks)

    def describe(self, about: Context) -> str:
        flagged = sorted({c.subject for c in self.checks if c.status.failing})
        found = f"level {self.level.value}, flagged: {', '.join(flagged)}" if flagged else "every check passed"
        return f"{about.who} completed run {self.run_id[:8]} of {self.model} with {len(self.checks)} checks ({found})"


@event_type("monitoring.RunFailed")
class RunFailed(Event):
    """A monitoring run could not finish; error says why."""

    tone: ClassVar[str] = "alert"
    run_id: str
    model: str
    error: str

    def describe(self, about: Context) -> str:
        return f"Run {self.run_id[:8]} of {self.model} failed: {self.error}"


@event_type("monitoring.RunDiagnosed")
class RunDiagnosed(Event):
    """The most likely cause of what a run found, with its evidence and the suggested actions."""

    run_id: str
    model: str
    cause: Choice[Cause]
    scope: str  # global, or "cohort: <segments>"
    evidence: list[str]
    actions: list[str]
    new_segments: list[str] | None = None

    def describe(self, about: Context) -> str:
        if self.cause is Cause.NO_PROBLEM:
            return f"Run {self.run_id[:8]} of {self.model} found no problem"
        cause = self.cause.value.replace("_", " ")
        return (
            f"Run {self.run_id[:8]} of {self.model} was diagnosed as {cause} ({self.scope}): {'; '.join(self.evidence)}"
        )


@event_type("monitoring.RunDiagnosisRevised")
class RunDiagnosisRevised(Event):
    """What a finished run found changed after the fact (labels arrived for its window): its checks
    computed again on the same inputs with the labels known now (`result_digest`), and the
    diagnosis they give, which replaces the one it cites (`revises`: that event's id)."""

    run_id: str
    model: str
    revision: int  # 1 for the first revised diagnosis, then 2, …
    revises: UuidText
    labelled_rows: int
    checks: list[Check]
    result_digest: str
    cause: Choice[Cause]
    scope: str
    evidence: list[str]
    actions: list[str]
    new_segments: list[str] | None = None

    @property
    def level(self) -> Level:
        return Level.worst(check.status for check in self.checks)

    def describe(self, about: Context) -> str:
        cause = self.cause.value.replace("_", " ")
        found = "found no problem" if self.cause is Cause.NO_PROBLEM else f"{cause} ({self.scope})"
        return (
            f"The diagnosis of run {self.run_id[:8]} of {self.model} was revised with labels for "
            f"{self.labelled_rows:,} rows: {found}; {'; '.join(self.evidence)}"
        )


@event_type("monitoring.PerformanceRealized")
class PerformanceRealized(Event):
    """Labels arrived for a past run's window: the performance realized on it, beside what the
    run estimated then and whether it fell within the estimate's band."""

    run_id: str
    model: str
    metric: str
    realized: float | None
    labelled_rows: int
    estimated: float | None = None
    lower: float | None = None
    upper: float | None = None
    within_band: bool | None = None

    def describe(self, about: Context) -> str:
        realized = "undefined" if self.realized is None else f"{self.realized:.3f}"
        band = ""
        if self.estimated is not None and self.lower is not None and self.upper is not None:
            inside = "within" if self.within_band else "outside"
            band = f", {inside} the estimate's band [{self.lower:.3f}, {self.upper:.3f}]"
        return (
            f"Labels for {self.labelled_rows:,} rows of run {self.run_id[:8]} of {self.model} arrived: "
            f"realized {self.metric} {realized}{band}"
        )


@dataclass
class RunAggregate:
    run_id: str
    stream_type: ClassVar[str] = STREAM
    version: int = 0
    model: str = ""
    window_end: str | None = None
    status: RunStatus | None = None
    result_digest: str | None = None
    diagnosed: bool = False
    labelled_rows: int = 0  # of the last PerformanceRealized
    revisions: int = 0  # of the diagnosis
    checks: tuple[Check, ...] = ()  # of RunCompleted
    found: tuple[str, str, frozenset[tuple[tuple[str, str, str], str]]] | None = None  # cause, scope, levels

    @staticmethod
    def findings(cause: Cause, scope: str, checks: Iterable[Check]) -> tuple:
        """What a diagnosis says, without its figures: its cause, its scope, and which conditions
        were checked with which level (labels that add a check, or change a level, change it)."""
        return cause.value, scope, frozenset((c.condition, c.status.value) for c in checks)

    @property
    def stream_id(self) -> str:
        return self.run_id

    def apply(self, event: Event, actor_id: str = "") -> None:
        self.version += 1
        match event:
            case RunStarted() | RunStartedV1():
                self.model, self.status, self.window_end = event.model, RunStatus.RUNNING, event.window.end
            case RunCompleted():
                self.status, self.result_digest = RunStatus.COMPLETED, event.result_digest
                self.checks = tuple(event.checks)
            case RunCompletedV1():
                self.status, self.result_digest = RunStatus.COMPLETED, event.result_digest
            case RunFailed():
                self.status = RunStatus.FAILED
            case RunDiagnosed():
                self.diagnosed = True
                self.found = self.findings(event.cause, event.scope, self.checks)
            case RunDiagnosisRevised():
                self.revisions = event.revision
                self.found = self.findings(event.cause, event.scope, event.checks)
            case PerformanceRealized():
                self.labelled_rows = event.labelled_rows

    def start(
        self, *, model: str, policy_version: int, window: RunWindow, revision: int = 0, revises: str | None = None
    ) -> list[Event]:
        """Nothing when the run has begun already (a redelivered task finishes it)."""
        if self.version:
            return []
        started = RunStarted(
            run_id=self.run_id,
            model=model,
            policy_version=policy_version,
            window=window,
            revision=revision or None,
            revises=revises if revision else None,
        )
        return [started]

    def complete(self, *, checks: list[Check], result_digest: str, input_digests: list[str]) -> list[Event]:
        self._require(RunStatus.RUNNING)
        return [
            RunCompleted(
                run_id=self.run_id,
                model=self.model,
                status=RunStatus.COMPLETED,
                checks=checks,
                result_digest=result_digest,
                input_digests=input_digests,
            )
        ]

    def fail(self, error: str) -> list[Event]:
        self._require(RunStatus.RUNNING)
        return [RunFailed(run_id=self.run_id, model=self.model, error=error[:2000])]

    def diagnose(self, diagnosis: RunDiagnosed) -> list[Event]:
        self._require(RunStatus.COMPLETED)
        if self.diagnosed:
            raise InvalidCommand(f"run {self.run_id} is diagnosed already")
        return [diagnosis]

    def revise(self, revised: RunDiagnosisRevised) -> list[Event]:
        """Nothing when the new diagnosis says what the current one says (figures aside): the same
        cause and scope from the same checks at the same levels."""
        self._require(RunStatus.COMPLETED)
        if not self.diagnosed:
            raise InvalidCommand(f"run {self.run_id} has no diagnosis to revise")
        if revised.revision != self.revisions + 1:
            raise InvalidCommand(f"run {self.run_id}: revision {revised.revision} follows {self.revisions}")
        if self.findings(revised.cause, revised.scope, revised.checks) == self.found:
            return []
        return [revised]

    def realize(self, realized: PerformanceRealized) -> list[Event]:
        """Nothing unless more labelled rows are known than at the last evaluation."""
        self._require(RunStatus.COMPLETED)
        return [realized] if realized.labelled_rows > self.labelled_rows else []

    def _require(self, status: RunStatus) -> None:
        if self.status is not status:
            state = self.status.value if self.status else "not started"
            raise InvalidCommand(f"run {self.run_id} is {state}, not {status.value}")
