"""The remediation aggregate: a request to roll back, promote, canary, retrain, change thresholds
or accept a risk, the four-eyes decisions on it, and the events of its stream ("remediation",
id). Pure: commands check the rules and return the events to append.

    requested ──approve×quorum──▶ approved ──▶ executing ──▶ succeeded | failed ──retry──▶ executing
        │  └──reject──▶ rejected     │                              └──abandon──▶ abandoned
        ├──cancel (requester)──▶ cancelled
        ├──(deadline passes)──▶ expired
                                     └──(approval lapses, not carried out)──▶ expired

Break-glass: one risk approver requests and executes an emergency rollback at once; the
request then waits for a second person's review.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from audit.errors import InvalidCommand
from audit.events import Choice, Closed, Context, Event, Timestamp, event_type
from monitoring.registry.domain import APPROVED_BY, DeploymentAction
from monitoring.remediation.kinds import DOCUMENTS, PARAMETERS, RemediationKind

STREAM = "remediation"


def deployment_of(kind: str, parameters: Mapping[str, Any]) -> tuple[DeploymentAction, str | None, Any] | None:
    """The deployment change a request of `kind` makes: (action, version, share), or None when
    the kind changes no deployment pointer."""
    actions = {approving: action for action, approving in APPROVED_BY.items()}
    if kind not in actions:
        return None
    action = actions[RemediationKind(kind)]
    version = parameters.get("to_version") if action is DeploymentAction.ROLLBACK else parameters.get("version")
    return action, version, parameters.get("share")


class RemediationState(Closed):
    REQUESTED = "requested"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    ABANDONED = "abandoned"


class Meaning(Closed):
    """What an electronic signature means (21 CFR 11.50)."""

    APPROVED = "approved"
    REJECTED = "rejected"
    REVIEWED = "reviewed"


class SelfApprovalForbidden(InvalidCommand):
    pass


class NotAnApprover(InvalidCommand):
    pass


class RequestConflict(InvalidCommand):
    """The command is well-formed, but the request's state, deadline or approvals no longer
    allow it: nothing is recorded, and the API answers 409."""


class DeadlinePassed(RequestConflict):
    pass


class ApprovalsLapsed(RequestConflict):
    pass


class NoReportAwaited(RequestConflict):
    pass


# Kinds whose execution ends only when an external pipeline reports back (signed callback).
AWAITS_REPORT = frozenset({RemediationKind.RETRAIN})


def nested_parameters(parameters: Mapping[str, Any]) -> list[str]:
    """The parameters that should be a single value (every one but the documents) and are a
    list or an object."""
    return sorted(
        name for name, value in parameters.items() if name not in DOCUMENTS and isinstance(value, dict | list)
    )


# Events ------------------------------------------------------------------------------------------


@event_type("monitoring.RemediationRequested", schema=1)
class RemediationRequestedV1(Event):
    """Schema 1: one approval, no break-glass, no deadline."""

    tone: ClassVar[str] = "decision"
    request_id: str
    model: str
    action: Choice[RemediationKind]
    parameters: dict[str, Any]
    evidence: list[str]

    def upcast(self) -> RemediationRequested:
        return RemediationRequested(**self.model_dump(), required_approvals=1, break_glass=False)


@event_type("monitoring.RemediationRequested", schema=2)
class RemediationRequested(Event):
    """Someone asks for a rollback, retraining, threshold change, ...; evidence cites events.
    Break-glass: an emergency rollback, executed at once and reviewed after."""

    tone: ClassVar[str] = "decision"
    request_id: str
    model: str
    action: Choice[RemediationKind]
    parameters: dict[str, Any]
    evidence: list[str]
    required_approvals: int | None = None
    break_glass: bool | None = None
    expires_at: Timestamp | None = None

    def describe(self, about: Context) -> str:
        urgency = "an emergency (break-glass) " if self.break_glass else ""
        return f"{about.who} requested {urgency}{what_is_asked(self)}{about.because}"


def what_is_asked(request: RemediationRequested) -> str:
    """The request in words: "the rollback of credit-default to 2026.10.1"."""
    p, model = request.parameters, request.model
    match request.action:
        case RemediationKind.ROLLBACK:
            return f"the rollback of {model} to {p.get('to_version')}"
        case RemediationKind.PROMOTE_CHALLENGER:
            return f"the promotion of {p.get('version')} to champion of {model}"
        case RemediationKind.CANARY_START:
            return f"a canary of {p.get('version')} on a {p.get('share')} share of {model}'s traffic"
        case RemediationKind.CANARY_STOP:
            return f"the end of {model}'s canary"
        case RemediationKind.RETRAIN:
            return f"retraining {model} on data from {p.get('data_start')} to {p.get('data_end')}"
        case RemediationKind.THRESHOLD_CHANGE:
            return f"a change of {model}'s monitoring policy"
        case RemediationKind.SET_CHALLENGER:
            version = p.get("version")
            return f"making {version} the challenger of {model}" if version else f"removing {model}'s challenger"
        case RemediationKind.RETIRE_VERSION:
            return f"retiring version {p.get('version')} of {model}"
        case RemediationKind.RETIRE_MODEL:
            return f"retiring the model {model}"
        case RemediationKind.SCHEMA_CHANGE:
            return f"a new data schema for {model}"
        case RemediationKind.REFERENCE_CHANGE:
            return f"adding the staged batch {str(p.get('batch'))[:12]} to {model}'s reference data"
    return f"accepting the risk of alert {str(p.get('alert_id'))[:8]} on {model} until {p.get('until')}"


class _Signed(Event):
    """A decision signed electronically: printed name, time and meaning (21 CFR 11.50)."""

    tone: ClassVar[str] = "signature"
    request_id: str
    signer_name: str
    signed_at: Timestamp
    meaning: Choice[Meaning]

    def describe(self, about: Context) -> str:
        asked = _asked(self.request_id, about)
        return (
            f"{self.signer_name} (risk approver) {self.meaning.value} {asked}, signed {self.signed_at}{about.because}"
        )


@event_type("monitoring.RemediationApproved")
class RemediationApproved(_Signed):
    """An approver signs the request."""


@event_type("monitoring.RemediationRejected")
class RemediationRejected(_Signed):
    """An approver refuses the request, with an electronic signature."""


@event_type("monitoring.RemediationReviewed")
class RemediationReviewed(_Signed):
    """A second person reviews a break-glass rollback after the fact, with an electronic signature."""


@event_type("monitoring.RemediationCancelled")
class RemediationCancelled(Event):
    """The requester withdraws the request."""

    request_id: str

    def describe(self, about: Context) -> str:
        return f"{about.who} withdrew {_asked(self.request_id, about)}{about.because}"


@event_type("monitoring.RemediationExpired")
class RemediationExpired(Event):
    """Nobody decided before the request's deadline."""

    request_id: str

    def describe(self, about: Context) -> str:
        return f"Nobody decided on {_asked(self.request_id, about)} before its deadline: it expired"


@event_type("monitoring.RemediationApprovalLapsed")
class RemediationApprovalLapsed(Event):
    """An approved request was not carried out before its approval lapsed (the workers were
    down, or its task was lost): an approval holds for the world it was given in, so it is not
    carried out any more."""

    tone: ClassVar[str] = "alert"
    request_id: str
    lapsed_at: Timestamp

    def describe(self, about: Context) -> str:
        return (
            f"The approval of {_asked(self.request_id, about)} lapsed at {self.lapsed_at} before it was "
            "carried out: it expired"
        )


@event_type("monitoring.RemediationExecutionStarted")
class RemediationExecutionStarted(Event):
    """An approved request starts executing."""

    request_id: str

    def describe(self, about: Context) -> str:
        return f"{about.who} started carrying out {_asked(self.request_id, about)}"


@event_type("monitoring.RemediationSucceeded")
class RemediationSucceeded(Event):
    """The executors carried the request out."""

    tone: ClassVar[str] = "decision"
    request_id: str
    result: dict[str, Any]

    def describe(self, about: Context) -> str:
        return f"{about.who} carried out {_asked(self.request_id, about)}"


@event_type("monitoring.RemediationFailed")
class RemediationFailed(Event):
    """Execution failed; it may be retried or abandoned."""

    tone: ClassVar[str] = "alert"
    request_id: str
    error: str

    def describe(self, about: Context) -> str:
        return f"Carrying out {_asked(self.request_id, about)} failed: {self.error}"


@event_type("monitoring.RemediationAbandoned")
class RemediationAbandoned(Event):
    """A failed request is given up; the reason is in the envelope."""

    request_id: str

    def describe(self, about: Context) -> str:
        return f"{about.who} gave up {_asked(self.request_id, about)}{about.because}"


def _asked(request_id: str, about: Context) -> str:
    request = about.first(STREAM, request_id)
    return what_is_asked(request) if isinstance(request, RemediationRequested) else f"request {request_id[:8]}"


# The aggregate -----------------------------------------------------------------------------------


def state_after(state: RemediationState | None, event: Event, *, approvals: int, required: int) -> RemediationState:
    """The request's state once `event` happened (`approvals` counted with it): one state
    machine for the aggregate and its read model."""
    match event:
        case RemediationRequested():
            return RemediationState.APPROVED if event.break_glass else RemediationState.REQUESTED
        case RemediationApproved():
            return RemediationState.APPROVED if approvals >= required else RemediationState.REQUESTED
        case RemediationExecutionStarted():
            return RemediationState.EXECUTING
        case RemediationSucceeded():
            return RemediationState.SUCCEEDED
        case RemediationFailed():
            return RemediationState.FAILED
        case RemediationRejected():
            return RemediationState.REJECTED
        case RemediationCancelled():
            return RemediationState.CANCELLED
        case RemediationExpired() | RemediationApprovalLapsed():
            return RemediationState.EXPIRED
        case RemediationAbandoned():
            return RemediationState.ABANDONED
    if state is None:
        raise InvalidCommand(f"{event.type_name} cannot begin a request")
    return state  # a review changes no state


@dataclass(frozen=True)
class Signer:
    """Who decides, as 21 CFR 11.50 asks to show it: printed name, time, meaning."""

    id: str
    name: str
    is_approver: bool  # holds the approver role at decision time
    signed_at: str


@dataclass
class RemediationAggregate:
    request_id: str
    stream_type: ClassVar[str] = STREAM
    version: int = 0
    state: RemediationState | None = None
    model: str = ""
    kind: RemediationKind | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    requester: str = ""
    required: int = 1
    approvals: list[str] = field(default_factory=list)
    break_glass: bool = False
    reviewed: bool = False
    expires_at: str | None = None

    @property
    def stream_id(self) -> str:
        return self.request_id

    def apply(self, event: Event, actor_id: str) -> None:
        self.version += 1
        match event:
            case RemediationRequested():
                self.model, self.kind = event.model, event.action
                self.parameters, self.requester = dict(event.parameters), actor_id
                self.required = event.required_approvals if event.required_approvals is not None else 1
                self.break_glass = bool(event.break_glass)
                self.expires_at = event.expires_at
            case RemediationApproved():
                self.approvals.append(actor_id)
            case RemediationReviewed():
                self.reviewed = True
        self.state = state_after(self.state, event, approvals=len(self.approvals), required=self.required)

    # Commands -------------------------------------------------------------------------------

    def request(
        self,
        *,
        model: str,
        kind: str,
        parameters: Mapping[str, Any],
        evidence: list[str],
        required: int,
        expires_at: str | None,
        break_glass: bool = False,
    ) -> list[Event]:
        if self.version:
            raise InvalidCommand(f"request {self.request_id} exists already")
        if kind not in set(RemediationKind):
            raise InvalidCommand(f"kind must be one of {', '.join(RemediationKind)}, not {kind!r}")
        expected = PARAMETERS[RemediationKind(kind)]
        missing, unknown = expected - set(parameters), set(parameters) - expected
        if missing or unknown:
            raise InvalidCommand(
                f"{kind} takes parameters {sorted(expected) or 'none'}"
                + (f"; missing {sorted(missing)}" if missing else "")
                + (f"; unknown {sorted(unknown)}" if unknown else "")
            )
        nested = nested_parameters(parameters)
        if nested:
            raise InvalidCommand(
                f"{kind}: {', '.join(nested)} must be a single value (text, a number, true or false), "
                "not a list or an object"
            )
        if break_glass and kind != RemediationKind.ROLLBACK:
            raise InvalidCommand("break-glass is for an emergency rollback only")
        return [
            RemediationRequested(
                request_id=self.request_id,
                model=model,
                action=RemediationKind(kind),
                parameters=dict(parameters),
                evidence=list(evidence),
                required_approvals=0 if break_glass else required,
                break_glass=break_glass,
                expires_at=expires_at if expires_at and not break_glass else None,
            )
        ]

    def approve(self, signer: Signer, *, lapsed: Collection[str] = frozenset()) -> list[Event]:
        """`lapsed`: earlier approvers who could not approve now (deactivated, or without the
        risk_approver role); their approvals do not count towards the quorum."""
        self._require(RemediationState.REQUESTED)
        self._require_second_person(signer, "approve")
        self._require_before_deadline(signer, "approved")
        self._require_standing_quorum(lapsed)
        return [RemediationApproved(**self._signature(signer, Meaning.APPROVED))]

    def reject(self, signer: Signer) -> list[Event]:
        self._require(RemediationState.REQUESTED)
        self._require_second_person(signer, "reject")
        self._require_before_deadline(signer, "rejected")
        return [RemediationRejected(**self._signature(signer, Meaning.REJECTED))]

    def review(self, signer: Signer) -> list[Event]:
        if not self.break_glass:
            raise InvalidCommand("only a break-glass request is reviewed after the fact")
        if self.reviewed:
            raise InvalidCommand("the request has been reviewed already")
        self._require_second_person(signer, "review")
        return [RemediationReviewed(**self._signature(signer, Meaning.REVIEWED))]

    def cancel(self, by: str) -> list[Event]:
        self._require(RemediationState.REQUESTED)
        if by != self.requester:
            raise InvalidCommand("only the requester can cancel a request")
        return [RemediationCancelled(request_id=self.request_id)]

    def expire(self, now: str) -> list[Event]:
        if self.state is not RemediationState.REQUESTED or not self.expires_at or now < self.expires_at:
            return []
        return [RemediationExpired(request_id=self.request_id)]

    def start(self, *, now: str | None = None, retry_until: str | None = None) -> list[Event]:
        """Execute an approved request, or retry a failed one until `retry_until`: an approval
        holds for the world it was given in, not for one days later."""
        if self.state not in (RemediationState.APPROVED, RemediationState.FAILED):
            raise InvalidCommand(f"the request is {self.state or 'missing'}: it cannot be executed")
        if self.state is RemediationState.APPROVED and now and retry_until and now >= retry_until:
            raise DeadlinePassed(
                f"the request's approval held until {retry_until}: it was not carried out by then, and is not "
                "carried out any more (file a new request if the change is still needed)"
            )
        if self.state is RemediationState.FAILED and now and retry_until and now >= retry_until:
            raise DeadlinePassed(
                f"the request's approval held for retries until {retry_until}: it can no longer be retried "
                "(abandon it, and file a new request if the change is still needed)"
            )
        return [RemediationExecutionStarted(request_id=self.request_id)]

    def lapse(self, *, now: str, until: str) -> list[Event]:
        """An approved request not carried out by `until`, when its approval lapsed: expired.
        Nothing when it is no longer waiting, or `now` is before `until`."""
        if self.state is not RemediationState.APPROVED or now < until:
            return []
        return [RemediationApprovalLapsed(request_id=self.request_id, lapsed_at=until)]

    def finish(self, *, ok: bool, detail: Mapping[str, Any]) -> list[Event]:
        self._require(RemediationState.EXECUTING)
        if ok:
            return [RemediationSucceeded(request_id=self.request_id, result=dict(detail))]
        return [RemediationFailed(request_id=self.request_id, error=str(detail.get("error"))[:2000])]

    def report(self, *, ok: bool, detail: Mapping[str, Any], version_when_signed: int | None = None) -> list[Event]:
        """The external pipeline's completion report (its signed callback): accepted once, by a
        request whose execution waits for one. `version_when_signed`: how many events the
        request had when the report was signed; fewer than now means it reports on an earlier
        execution (a failure, replayed after the retry started), which it does not complete."""
        if not self.version:
            raise InvalidCommand(f"no remediation request {self.request_id}")
        if self.kind not in AWAITS_REPORT:
            raise NoReportAwaited(f"a {self.kind} request awaits no pipeline report: only retrain does")
        if self.state is not RemediationState.EXECUTING:
            raise NoReportAwaited(
                f"the request is {self.state}, not executing: it awaits no pipeline report "
                "(a report is applied once; a retried execution awaits a new one)"
            )
        if version_when_signed is not None and version_when_signed < self.version:
            raise NoReportAwaited(
                "the report was signed before this execution started: it reports on an earlier one "
                "(a retried execution awaits a report signed after it began)"
            )
        return self.finish(ok=ok, detail=detail)

    def abandon(self) -> list[Event]:
        self._require(RemediationState.FAILED)
        return [RemediationAbandoned(request_id=self.request_id)]

    # Rules ----------------------------------------------------------------------------------

    def _require(self, state: RemediationState) -> None:
        if not self.version:
            raise InvalidCommand(f"no remediation request {self.request_id}")
        if self.state is not state:
            raise InvalidCommand(f"the request is {self.state}, not {state}")

    def _require_before_deadline(self, signer: Signer, decided: str) -> None:
        # Beat expires a request some time after its deadline; until then a late decision
        # would still be recorded, so the deadline itself is the rule, not the state.
        if self.expires_at and signer.signed_at >= self.expires_at:
            raise DeadlinePassed(
                f"the request's deadline was {self.expires_at}: it can no longer be {decided} "
                "(it expires; file a new request if the change is still needed)"
            )

    def _require_standing_quorum(self, lapsed: Collection[str]) -> None:
        # A recorded approval cannot be withdrawn, and the approval that completes the quorum
        # makes the request approved. So when an earlier approver has lost their standing,
        # that completing approval is refused: the request cannot be approved on it.
        if len(self.approvals) + 1 < self.required:
            return
        gone = [approver for approver in self.approvals if approver in lapsed]
        if gone:
            standing = len(self.approvals) - len(gone) + 1
            raise ApprovalsLapsed(
                f"the approval of {', '.join(gone)} no longer counts: no longer an active risk approver. "
                f"With yours the request has {standing} of the {self.required} approvals it needs, and an "
                "approval cannot be withdrawn: the requester cancels the request and files it again"
            )

    def _require_second_person(self, signer: Signer, verb: str) -> None:
        if signer.id == self.requester:
            raise SelfApprovalForbidden(f"the requester cannot {verb} their own request")
        if not signer.is_approver:
            raise NotAnApprover(f"to {verb} needs the risk_approver role at the time of the decision")
        if signer.id in self.approvals:
            raise InvalidCommand("one person counts once: you have approved this request already")

    def _signature(self, signer: Signer, meaning: Meaning) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "signer_name": signer.name,
            "signed_at": signer.signed_at,
            "meaning": meaning,
        }
