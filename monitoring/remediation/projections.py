"""The read model of remediation requests, kept in step with the remediation streams; and the
execution that follows a request once it is approved (a subscriber: after commit, not on rebuild)."""

from __future__ import annotations

from django.db import transaction

from audit import projections
from audit.envelope import parse_time
from audit.store import RecordedEvent
from monitoring.remediation.domain import (
    RemediationAbandoned,
    RemediationApprovalLapsed,
    RemediationApproved,
    RemediationCancelled,
    RemediationExecutionStarted,
    RemediationExpired,
    RemediationFailed,
    RemediationRejected,
    RemediationRequested,
    RemediationReviewed,
    RemediationState,
    RemediationSucceeded,
    state_after,
)
from monitoring.remediation.models import Remediation


def _requested(event: RemediationRequested, recorded: RecordedEvent) -> None:
    Remediation.objects.create(
        request_id=event.request_id,
        model_name=event.model,
        kind=event.action,
        parameters=event.parameters,
        evidence=event.evidence,
        state=state_after(None, event, approvals=0, required=event.required_approvals or 0),
        requested_by=recorded.actor["id"],
        required_approvals=event.required_approvals if event.required_approvals is not None else 1,
        break_glass=bool(event.break_glass),
        expires_at=parse_time(event.expires_at) if event.expires_at else None,
        requested_at=recorded.occurred_at,
        requested_seq=recorded.seq,
        requested_event_id=recorded.event_id,
        updated_seq=recorded.seq,
    )


def _decided(event, recorded: RecordedEvent) -> None:
    request = Remediation.objects.filter(request_id=event.request_id).first()
    if request is None:
        return
    match event:
        case RemediationApproved():
            signed = {"by": recorded.actor["id"], "name": event.signer_name, "at": event.signed_at}
            request.approvals = [*request.approvals, signed]
        case RemediationReviewed():
            request.reviewed_by = recorded.actor["id"]
        case RemediationSucceeded():
            request.result = event.result
        case RemediationFailed():
            request.error = event.error
        case RemediationApprovalLapsed():
            request.error = f"its approval lapsed at {event.lapsed_at} before it was carried out"
    request.state = state_after(
        RemediationState(request.state), event, approvals=len(request.approvals), required=request.required_approvals
    )
    request.updated_seq = recorded.seq
    request.save()


def _execute_when_approved(event, recorded: RecordedEvent) -> None:
    """Quorum reached, or a break-glass request: carry it out once the decision is committed."""
    request_id = event.request_id
    if Remediation.objects.filter(request_id=request_id, state=RemediationState.APPROVED).exists():
        transaction.on_commit(lambda: _execute_later(request_id), robust=True)  # else beat queues it (stranded)


def _execute_later(request_id: str) -> None:
    from monitoring.remediation.tasks import execute_remediation

    execute_remediation.delay(request_id)


REMEDIATIONS = projections.register(
    projections.Projection(
        name="monitoring.remediations",
        handlers={
            RemediationRequested: _requested,
            **dict.fromkeys(
                [
                    RemediationApproved,
                    RemediationRejected,
                    RemediationReviewed,
                    RemediationCancelled,
                    RemediationExpired,
                    RemediationApprovalLapsed,
                    RemediationExecutionStarted,
                    RemediationSucceeded,
                    RemediationFailed,
                    RemediationAbandoned,
                ],
                _decided,
            ),
        },
        models=[Remediation],
    )
)
projections.subscribe(RemediationRequested, _execute_when_approved)
projections.subscribe(RemediationApproved, _execute_when_approved)
