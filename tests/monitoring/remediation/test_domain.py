"""Every transition of the remediation aggregate and every forbidden one, without a database."""

import pytest

from audit.aggregates import InvalidCommand
from monitoring.remediation.domain import (
    NotAnApprover,
    RemediationAggregate,
    RemediationExecutionStarted,
    SelfApprovalForbidden,
    Signer,
)

ALICE, BOB, CAROL = (
    Signer(n, n.title(), approver, "2026-11-26T00:00:00.000000Z")
    for n, approver in (("alice", False), ("bob", True), ("carol", True))
)


def _apply(request: RemediationAggregate, changes, actor: str) -> RemediationAggregate:
    for event in changes:
        request.apply(event, actor)
    return request


def _requested(required: int = 1, **extra) -> RemediationAggregate:
    request = RemediationAggregate("r-1")
    changes = request.request(
        model="m",
        kind="rollback",
        parameters={"to_version": "1"},
        evidence=[],
        required=required,
        expires_at="2026-11-29T00:00:00.000000Z",
        **extra,
    )
    return _apply(request, changes, "alice")


def test_requested_approved_executing_succeeded():
    request = _apply(_requested(), _requested().approve(BOB), "bob")
    assert request.state == "approved"
    request = _apply(request, request.start(), "system")
    assert request.state == "executing"
    assert _apply(request, request.finish(ok=True, detail={}), "system").state == "succeeded"


def test_failed_can_be_retried_or_abandoned_but_nothing_else():
    request = _apply(_requested(), _requested().approve(BOB), "bob")
    request = _apply(request, request.start(), "system")
    request = _apply(request, request.finish(ok=False, detail={"error": "boom"}), "system")
    assert request.state == "failed"
    assert isinstance(request.start()[0], RemediationExecutionStarted)  # retry
    assert _apply(request, request.abandon(), "bob").state == "abandoned"
    with pytest.raises(InvalidCommand):
        request.start()


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (lambda r: r.approve(ALICE), SelfApprovalForbidden),
        (lambda r: r.reject(ALICE), SelfApprovalForbidden),
        (lambda r: r.approve(Signer("dave", "Dave", False, "t")), NotAnApprover),
        (lambda r: r.cancel("bob"), InvalidCommand),
        (lambda r: r.start(), InvalidCommand),
        (lambda r: r.finish(ok=True, detail={}), InvalidCommand),
        (lambda r: r.abandon(), InvalidCommand),
        (lambda r: r.review(BOB), InvalidCommand),
    ],
)
def test_forbidden_on_a_fresh_request(step, error):
    with pytest.raises(error):
        step(_requested())


@pytest.mark.parametrize("final", ["reject", "cancel", "expire"])
def test_nothing_moves_a_closed_request(final):
    request = _requested()
    changes = {
        "reject": lambda: request.reject(BOB),
        "cancel": lambda: request.cancel("alice"),
        "expire": lambda: request.expire("2026-12-01T00:00:00.000000Z"),
    }[final]()
    request = _apply(request, changes, "bob")
    assert request.state in ("rejected", "cancelled", "expired")
    for step in (
        lambda: request.approve(CAROL),
        lambda: request.reject(CAROL),
        lambda: request.cancel("alice"),
        lambda: request.start(),
    ):
        with pytest.raises(InvalidCommand):
            step()
    assert request.expire("2027-01-01T00:00:00.000000Z") == []


def test_quorum_counts_distinct_people_and_expiry_waits_for_the_deadline():
    request = _requested(required=2)
    request = _apply(request, request.approve(BOB), "bob")
    assert request.state == "requested"
    with pytest.raises(InvalidCommand, match="counts once"):
        request.approve(BOB)
    assert request.expire("2026-11-28T00:00:00.000000Z") == []
    assert _apply(request, request.approve(CAROL), "carol").state == "approved"


def test_break_glass_is_approved_at_once_for_rollbacks_only_and_reviewed_by_someone_else():
    request = _requested(break_glass=True)
    assert request.state == "approved" and request.required == 0
    with pytest.raises(SelfApprovalForbidden):
        request.review(ALICE)
    request = _apply(request, request.review(BOB), "bob")
    with pytest.raises(InvalidCommand, match="reviewed already"):
        request.review(CAROL)
    with pytest.raises(InvalidCommand, match="rollback only"):
        RemediationAggregate("r-2").request(
            model="m",
            kind="retrain",
            parameters={"data_start": 1, "data_end": 2},
            evidence=[],
            required=1,
            expires_at=None,
            break_glass=True,
        )


def test_a_quorum_below_one_or_for_an_unknown_kind_fails_the_system_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.REMEDIATION_APPROVALS = {**settings.REMEDIATION_APPROVALS, "rollback": 0, "yolo": 1}
    with pytest.raises(SystemCheckError, match=r"monitoring\.E002") as caught:
        call_command("check")
    assert "monitoring.E001" in str(caught.value)
