"""The remediation aggregate: a request to roll back, promote, canary, retrain, change thresholds
or accept a risk, and the four-eyes decisions on it. Pure: folded from the events of its
stream ("remediation", id); commands check the rules and return the events to append.

    requested ──approve×quorum──▶ approved ──▶ executing ──▶ succeeded | failed ──retry──▶ executing
        │  └──reject──▶ rejected                                     └──abandon──▶ abandoned
        ├──cancel (requester)──▶ cancelled
        └──(deadline passes)──▶ expired

Break-glass: one risk approver requests and executes an emergency rollback at once; the
request then waits for a second person's review.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitoring.aggregates import InvalidCommand

KINDS = ("rollback", "promote_challenger", "canary_start", "canary_stop", "retrain", "threshold_change", "accept_risk")
PARAMETERS = {
    "rollback": {"to_version"},
    "promote_challenger": {"version"},
    "canary_start": {"version", "share"},
    "canary_stop": set(),
    "retrain": {"data_start", "data_end"},
    "threshold_change": {"policy"},
    "accept_risk": {"alert_id", "until"},
}
OPEN, APPROVED, EXECUTING = "requested", "approved", "executing"
FINAL = ("succeeded", "rejected", "cancelled", "expired", "abandoned")


class SelfApprovalForbidden(InvalidCommand):
    pass


class NotAnApprover(InvalidCommand):
    pass


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
    version: int = 0
    state: str = ""
    model: str = ""
    kind: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    requester: str = ""
    required: int = 1
    approvals: list[str] = field(default_factory=list)
    break_glass: bool = False
    reviewed: bool = False
    expires_at: str | None = None

    @classmethod
    def replay(cls, request_id: str, events: Iterable[tuple[str, Mapping[str, Any], str]]) -> RemediationAggregate:
        """`events`: (type, payload, actor id) in stream order."""
        request = cls(request_id)
        for event_type, payload, actor in events:
            request.apply(event_type, payload, actor)
        return request

    def apply(self, event_type: str, payload: Mapping[str, Any], actor: str) -> None:
        self.version += 1
        short = event_type.removeprefix("monitoring.Remediation")
        if short == "Requested":
            self.state, self.model, self.kind = OPEN, payload["model"], payload["action"]
            self.parameters, self.requester = dict(payload["parameters"]), actor
            self.required = int(payload.get("required_approvals", 1))
            self.break_glass = bool(payload.get("break_glass", False))
            self.expires_at = payload.get("expires_at")
            if self.break_glass:
                self.state = APPROVED
        elif short == "Approved":
            self.approvals.append(actor)
            if len(self.approvals) >= self.required:
                self.state = APPROVED
        elif short == "Reviewed":
            self.reviewed = True
        elif short == "ExecutionStarted":
            self.state = EXECUTING
        elif short in ("Succeeded", "Rejected", "Cancelled", "Expired", "Abandoned"):
            self.state = short.lower()
        elif short == "Failed":
            self.state = "failed"

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
    ) -> list[tuple[str, dict]]:
        if self.version:
            raise InvalidCommand(f"request {self.request_id} exists already")
        if kind not in KINDS:
            raise InvalidCommand(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        missing = PARAMETERS[kind] - set(parameters)
        unknown = set(parameters) - PARAMETERS[kind]
        if missing or unknown:
            raise InvalidCommand(
                f"{kind} takes parameters {sorted(PARAMETERS[kind]) or 'none'}"
                + (f"; missing {sorted(missing)}" if missing else "")
                + (f"; unknown {sorted(unknown)}" if unknown else "")
            )
        if break_glass and kind != "rollback":
            raise InvalidCommand("break-glass is for an emergency rollback only")
        payload = {
            "request_id": self.request_id,
            "model": model,
            "action": kind,
            "parameters": dict(parameters),
            "evidence": list(evidence),
            "required_approvals": 0 if break_glass else required,
            "break_glass": break_glass,
        }
        if expires_at and not break_glass:
            payload["expires_at"] = expires_at
        return [("monitoring.RemediationRequested", payload)]

    def approve(self, signer: Signer) -> list[tuple[str, dict]]:
        self._require(OPEN)
        self._require_second_person(signer, "approve")
        return [("monitoring.RemediationApproved", self._signature(signer, "approved"))]

    def reject(self, signer: Signer) -> list[tuple[str, dict]]:
        self._require(OPEN)
        self._require_second_person(signer, "reject")
        return [("monitoring.RemediationRejected", self._signature(signer, "rejected"))]

    def review(self, signer: Signer) -> list[tuple[str, dict]]:
        if not self.break_glass:
            raise InvalidCommand("only a break-glass request is reviewed after the fact")
        if self.reviewed:
            raise InvalidCommand("the request has been reviewed already")
        self._require_second_person(signer, "review")
        return [("monitoring.RemediationReviewed", self._signature(signer, "reviewed"))]

    def cancel(self, by: str) -> list[tuple[str, dict]]:
        self._require(OPEN)
        if by != self.requester:
            raise InvalidCommand("only the requester can cancel a request")
        return [("monitoring.RemediationCancelled", {"request_id": self.request_id})]

    def expire(self, now: str) -> list[tuple[str, dict]]:
        if self.state != OPEN or not self.expires_at or now < self.expires_at:
            return []
        return [("monitoring.RemediationExpired", {"request_id": self.request_id})]

    def start(self) -> list[tuple[str, dict]]:
        if self.state not in (APPROVED, "failed"):
            raise InvalidCommand(f"a {self.state or 'missing'} request cannot be executed")
        return [("monitoring.RemediationExecutionStarted", {"request_id": self.request_id})]

    def finish(self, *, ok: bool, detail: Mapping[str, Any]) -> list[tuple[str, dict]]:
        self._require(EXECUTING)
        if ok:
            return [("monitoring.RemediationSucceeded", {"request_id": self.request_id, "result": dict(detail)})]
        return [
            ("monitoring.RemediationFailed", {"request_id": self.request_id, "error": str(detail.get("error"))[:2000]})
        ]

    def abandon(self) -> list[tuple[str, dict]]:
        self._require("failed")
        return [("monitoring.RemediationAbandoned", {"request_id": self.request_id})]

    # Rules ----------------------------------------------------------------------------------

    def _require(self, state: str) -> None:
        if not self.version:
            raise InvalidCommand(f"no remediation request {self.request_id}")
        if self.state != state:
            raise InvalidCommand(f"the request is {self.state}, not {state}")

    def _require_second_person(self, signer: Signer, verb: str) -> None:
        if signer.id == self.requester:
            raise SelfApprovalForbidden(f"the requester cannot {verb} their own request")
        if not signer.is_approver:
            raise NotAnApprover(f"to {verb} needs the risk_approver role at the time of the decision")
        if signer.id in self.approvals:
            raise InvalidCommand("one person counts once: you have approved this request already")

    def _signature(self, signer: Signer, meaning: str) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "signer_name": signer.name,
            "signed_at": signer.signed_at,
            "meaning": meaning,
        }
