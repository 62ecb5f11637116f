"""Every transition of the remediation aggregate and every forbidden one, without a database."""

import pytest

from audit.aggregates import InvalidCommand
from monitoring.remediation.domain import (
    ApprovalsLapsed,
    DeadlinePassed,
    NoReportAwaited,
    NotAnApprover,
    RemediationAggregate,
    RemediationApprovalLapsed,
    RemediationExecutionStarted,
    RemediationState,
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


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decision_signed_at_or_after_the_deadline_is_refused_though_not_yet_expired(decision):
    request = _requested()  # its deadline: 2026-11-29T00:00:00.000000Z
    for signed_at in ("2026-11-29T00:00:00.000000Z", "2026-11-30T08:00:00.000000Z"):
        late = Signer("bob", "Bob", True, signed_at)
        with pytest.raises(DeadlinePassed, match="deadline was 2026-11-29"):
            getattr(request, decision)(late)
    assert request.state == "requested"
    just_in_time = Signer("bob", "Bob", True, "2026-11-28T23:59:59.999999Z")
    assert getattr(request, decision)(just_in_time)


def test_the_approval_completing_a_quorum_counts_only_approvers_who_still_stand():
    request = _requested(required=3)
    dave = Signer("dave", "Dave", True, "2026-11-26T00:00:00.000000Z")
    request = _apply(request, request.approve(BOB), "bob")
    request = _apply(request, request.approve(CAROL, lapsed={"bob"}), "carol")  # not the last: recorded
    assert request.state == "requested"
    with pytest.raises(ApprovalsLapsed, match=r"approval of bob no longer counts.*2 of the 3"):
        request.approve(dave, lapsed={"bob"})
    assert _apply(request, request.approve(dave, lapsed={"eve"}), "dave").state == "approved"


def test_only_an_executing_retrain_takes_a_pipeline_report():
    rollback = _apply(_requested(), _requested().approve(BOB), "bob")
    rollback = _apply(rollback, rollback.start(), "system")
    with pytest.raises(NoReportAwaited, match="a rollback request awaits no pipeline report"):
        rollback.report(ok=True, detail={})
    retrain = RemediationAggregate("r-3")
    retrain = _apply(
        retrain,
        retrain.request(
            model="m",
            kind="retrain",
            parameters={"data_start": "a", "data_end": "b"},
            evidence=[],
            required=1,
            expires_at=None,
        ),
        "alice",
    )
    with pytest.raises(NoReportAwaited, match="requested, not executing"):
        retrain.report(ok=True, detail={})
    retrain = _apply(retrain, retrain.approve(BOB), "bob")
    retrain = _apply(retrain, retrain.start(), "system")
    retrain = _apply(retrain, retrain.report(ok=True, detail={"new_version": "2"}), "pipeline")
    assert retrain.state == "succeeded"
    with pytest.raises(NoReportAwaited, match="succeeded, not executing"):
        retrain.report(ok=True, detail={"new_version": "2"})


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


def test_a_failed_request_is_retried_only_until_its_retry_deadline():
    request = _apply(_requested(), _requested().approve(BOB), "bob")
    first = request.start(now="2026-11-26T00:00:00.000000Z", retry_until="2026-11-26T00:30:00.000000Z")
    request = _apply(request, first, "system")
    request = _apply(request, request.finish(ok=False, detail={"error": "down"}), "system")
    assert request.start(now="2026-11-26T00:29:59.999999Z", retry_until="2026-11-26T00:30:00.000000Z")
    with pytest.raises(DeadlinePassed, match=r"retries until 2026-11-26T00:30:00\.000000Z"):
        request.start(now="2026-11-26T00:30:00.000000Z", retry_until="2026-11-26T00:30:00.000000Z")


def test_an_approval_not_carried_out_before_it_lapses_expires_the_request():
    request = _apply(_requested(), _requested().approve(BOB), "bob")
    deadline = "2026-11-26T00:30:00.000000Z"
    with pytest.raises(DeadlinePassed, match=r"approval held until 2026-11-26T00:30:00\.000000Z: it was not carried"):
        request.start(now=deadline, retry_until=deadline)
    assert request.lapse(now="2026-11-26T00:29:59.999999Z", until=deadline) == []
    (lapsed,) = request.lapse(now=deadline, until=deadline)
    assert isinstance(lapsed, RemediationApprovalLapsed) and lapsed.lapsed_at == deadline
    expired = _apply(request, [lapsed], "system")
    assert expired.state is RemediationState.EXPIRED
    assert expired.lapse(now=deadline, until=deadline) == []  # once
    with pytest.raises(InvalidCommand, match="the request is expired: it cannot be executed"):
        expired.start()
    in_time = _apply(_requested(), _requested().approve(BOB), "bob")
    started = _apply(in_time, in_time.start(), "system")
    assert started.lapse(now=deadline, until=deadline) == []  # carried out in time: nothing lapses


def test_a_report_signed_before_the_execution_began_does_not_complete_it():
    retrain = RemediationAggregate("r-4")
    parameters = {"data_start": "a", "data_end": "b"}
    asked = retrain.request(model="m", kind="retrain", parameters=parameters, evidence=[], required=1, expires_at=None)
    retrain = _apply(retrain, asked, "alice")
    retrain = _apply(retrain, retrain.approve(BOB), "bob")
    retrain = _apply(retrain, retrain.start(), "system")
    signed_during_first = retrain.version
    retrain = _apply(retrain, retrain.report(ok=False, detail={"error": "oom"}), "pipeline")
    retrain = _apply(retrain, retrain.start(), "system")
    with pytest.raises(NoReportAwaited, match="signed before this execution started"):
        retrain.report(ok=False, detail={"error": "oom"}, version_when_signed=signed_during_first)
    assert retrain.report(ok=True, detail={}, version_when_signed=retrain.version)
