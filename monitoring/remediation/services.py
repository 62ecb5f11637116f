"""Remediation commands: request, decide (four eyes, re-authenticated, signed), execute,
cancel, expire, review break-glass, and the alert for an overdue review.

Two approvers acting at once append against the same stream version: one wins, the other's
command is re-run on the new state and answers with what it finds (already approved)."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.db import transaction
from django.http import HttpRequest

from audit.aggregates import Executed, InvalidCommand, aggregate_execute, aggregate_load
from audit.envelope import format_time, read_time
from audit.events import Event
from audit.models import Event as EventRow
from audit.store import Actor, RecordedEvent
from monitoring.access.roles import Role, has_role
from monitoring.alerting.domain import STREAM as ALERT_STREAM
from monitoring.alerting.domain import AlertAggregate, AlertStatus
from monitoring.alerting.models import Alert
from monitoring.alerting.services import Finding, alert_execute, alert_open, alert_raise
from monitoring.ingestion.services import Adoption, batch_ingest, reference_check, staged_reference
from monitoring.registry.domain import ModelNotFound
from monitoring.registry.models import RegisteredModel
from monitoring.registry.services import model_load, model_retire, model_update, version_retire
from monitoring.remediation.domain import (
    AWAITS_REPORT,
    STREAM,
    DeadlinePassed,
    RemediationAggregate,
    RemediationExecutionStarted,
    RemediationState,
    Signer,
    deployment_of,
    nested_parameters,
)
from monitoring.remediation.executors import DeploymentChange, configured_executors
from monitoring.remediation.kinds import PARAMETERS, ApprovalRequired, RemediationKind
from monitoring.remediation.models import Remediation
from monitoring.runs.domain import STREAM as RUN_STREAM
from monitoring.runs.domain import Level, RunCompleted, RunFailed

EXECUTOR = Actor("system", "remediation-executor", "Driftledger remediation executor")
PIPELINE = Actor("service", "pipeline-callback", "External pipeline (signed callback)")


class ReauthenticationFailed(InvalidCommand):
    pass


def remediation_load(request_id: str) -> RemediationAggregate:
    return aggregate_load(RemediationAggregate(request_id))


def remediation_execute(
    request_id: str,
    command: Callable[[RemediationAggregate], Sequence[Event]],
    *,
    actor: Actor,
    reason: str | None = None,
    causation: str | None = None,
) -> RemediationAggregate:
    """Run `command` on the request and record what it decides; returns the request after it."""
    return aggregate_execute(
        lambda: RemediationAggregate(request_id), command, actor=actor, reason=reason, causation=causation
    ).aggregate


@dataclass(frozen=True)
class Credentials:
    """What a person re-enters to file a break-glass rollback, which is carried out at once."""

    user: Any
    password: str
    code: str | None = None
    request: Any = None  # the HTTP request, for the lockout; None from a command line


def remediation_request(
    *,
    model: str,
    kind: str,
    parameters: dict[str, Any],
    evidence: list[str],
    actor: Actor,
    reason: str,
    break_glass: bool = False,
    credentials: Credentials | None = None,
) -> str:
    """File a request; a break-glass one only with its requester's `credentials`, checked last,
    once the request is known to be well-formed (a code of the authenticator is spent once)."""
    if not RegisteredModel.objects.filter(name=model, retired=False).exists():
        raise ModelNotFound(f"no active model named {model!r}")
    _check_target(model, kind, parameters)
    evidence = cited_events(evidence)
    request_id = str(uuid.uuid4())
    required = settings.REMEDIATION_APPROVALS.get(kind, 1)
    expires = format_time(dt.datetime.now(dt.UTC) + dt.timedelta(hours=settings.REMEDIATION_EXPIRY_HOURS))
    cause = _uuid(evidence[0]) if evidence else None  # the run or alert the request answers

    def command(request: RemediationAggregate) -> list[Event]:
        return request.request(
            model=model,
            kind=kind,
            parameters=parameters,
            evidence=evidence,
            required=required,
            expires_at=expires,
            break_glass=break_glass,
        )

    if break_glass:
        command(RemediationAggregate(request_id))  # refused here, before anything is re-entered, if malformed
        if credentials is None or credentials.user.username != actor.id:
            raise ReauthenticationFailed("a break-glass rollback is filed only with its requester's password")
        who = credentials
        reauthenticate(who.user, password=who.password, code=who.code, request=who.request)
    remediation_execute(request_id, command, actor=actor, reason=reason, causation=cause)
    return request_id


def requester_refusal(user, *, break_glass: bool) -> str | None:
    """Why `user` may not file this request, or None: engineers request, risk approvers file
    break-glass rollbacks only (separation of duties)."""
    if break_glass and not has_role(user, {Role.RISK_APPROVER}):
        return "break-glass needs the risk_approver role"
    if not break_glass and not has_role(user, {Role.ML_ENGINEER}):
        return "requesting a remediation needs the ml_engineer role (a risk approver files break-glass rollbacks only)"
    return None


def cited_events(evidence: list[str]) -> list[str]:
    """The event ids that `evidence` cites: event ids as they are, run ids as the run's outcome
    (RunCompleted or RunFailed), alert ids as the event that raised the alert."""
    ids = _uuids(evidence)
    if len(ids) != len(evidence):
        bad = [e for e in evidence if _uuid(e) is None]
        raise InvalidCommand(f"evidence cites event, run or alert ids (UUIDs), not {', '.join(map(repr, bad[:5]))}")
    found = {str(e): str(e) for e in EventRow.objects.filter(event_id__in=ids).values_list("event_id", flat=True)}
    outcomes = (RunCompleted.type_name, RunFailed.type_name)
    for stream_id, event_id in EventRow.objects.filter(
        stream_type=RUN_STREAM, stream_id__in=ids, event_type__in=outcomes
    ).values_list("stream_id", "event_id"):
        found.setdefault(stream_id, str(event_id))
    for stream_id, event_id in EventRow.objects.filter(
        stream_type=ALERT_STREAM, stream_id__in=ids, stream_version=1
    ).values_list("stream_id", "event_id"):
        found.setdefault(stream_id, str(event_id))
    missing = [e for e in ids if e not in found]
    if missing:
        raise InvalidCommand(f"evidence must cite events, runs or alerts of the log; unknown: {', '.join(missing[:5])}")
    return list(dict.fromkeys(found[e] for e in ids))


def approval_event(request_id: str, *, model: str, kind: RemediationKind) -> str:
    """The id of the event a change executed for request `request_id` follows from, once the log
    shows that request approved, executing, and asking for exactly this kind of change on this
    model; otherwise the change is refused (a change of what serves or alerts has no other door)."""
    request = remediation_load(request_id)
    if request.state is not RemediationState.EXECUTING or request.model != model or request.kind != kind:
        raise ApprovalRequired(kind, {}, f"request {request_id} is no approved {kind.value} of {model} being executed")
    last = EventRow.objects.filter(stream_type=STREAM, stream_id=request_id).order_by("-stream_version").first()
    assert last is not None  # the request exists: it has events
    return str(last.event_id)


def reauthenticate(user, *, password: str, code: str | None = None, request=None) -> None:
    """ReauthenticationFailed unless `password` is the user's, and `code` their authenticator's
    current one when their role needs a second factor: what a signature, or an emergency change
    carried out at once, asks of the person at the moment they make it."""
    from monitoring.access.second_factor import code_verify, second_factor_required

    if request is None:  # a command line, not an HTTP request: still counted by the lockout
        request = HttpRequest()
        request.META["REMOTE_ADDR"] = "127.0.0.1"
    if authenticate(request, username=user.username, password=password) is None:
        raise ReauthenticationFailed("re-authentication failed: the password is not this user's")
    if second_factor_required(user) and not code_verify(user, code or ""):
        raise ReauthenticationFailed("re-authentication failed: your role needs the authenticator's current code")


def remediation_decide(
    *, request_id: str, decision: str, user, password: str, reason: str, request=None, code: str | None = None
) -> RemediationAggregate:
    """approve, reject or review, after the person re-enters their password, and the current
    code of their authenticator when their role needs a second factor."""
    reauthenticate(user, password=password, code=code, request=request)
    signer = Signer(
        id=user.username,
        name=user.get_full_name() or user.username,
        is_approver=has_role(user, {Role.RISK_APPROVER}),
        signed_at=format_time(dt.datetime.now(dt.UTC)),
    )
    actor = Actor("user", user.username, signer.name)
    steps: dict[str, Callable[[RemediationAggregate], Sequence[Event]]] = {
        "approve": lambda r: r.approve(signer, lapsed=approvers_without_standing(r.approvals)),
        "reject": lambda r: r.reject(signer),
        "review": lambda r: r.review(signer),
    }
    return remediation_execute(request_id, steps[decision], actor=actor, reason=reason)


def approvers_without_standing(usernames: Sequence[str]) -> frozenset[str]:
    """Of these earlier approvers, those who could not approve now: deactivated, gone, or no
    longer holding the risk_approver role. Their approvals do not count towards a quorum."""
    people = {user.username: user for user in get_user_model().objects.filter(username__in=usernames)}
    return frozenset(name for name in usernames if not has_role(people.get(name), {Role.RISK_APPROVER}))


def remediation_run(request_id: str) -> RemediationAggregate:
    """Carry out an approved (or failed, when retried) request with its executors."""
    now, until = format_time(dt.datetime.now(dt.UTC)), retry_deadline(request_id)
    retry_until = format_time(until) if until else None
    try:
        request = remediation_execute(request_id, lambda r: r.start(now=now, retry_until=retry_until), actor=EXECUTOR)
    except DeadlinePassed:
        state = remediation_load(request_id).state
        if retry_until is None or state is RemediationState.FAILED:
            raise  # a retry asked for too late: the person who asked is told
        # Approved: its approval lapsed before it was carried out (beat may have recorded it first).
        return _lapse(request_id, now=now, until=retry_until).aggregate
    try:
        result = _carry_out(request)
    except Exception as error:  # noqa: BLE001 - any executor failure is the execution's outcome
        failure = {"error": repr(error)}
        return remediation_execute(request_id, lambda r: r.finish(ok=False, detail=failure), actor=EXECUTOR)
    if result.get("pending"):
        return request  # an external pipeline reports completion through the callback
    return remediation_execute(request_id, lambda r: r.finish(ok=True, detail=result), actor=EXECUTOR)


def retry_deadline(request_id: str) -> dt.datetime | None:
    """Until when a failed request may be retried: REMEDIATION_RETRY_HOURS after the approval
    that made it executable (after the request itself, for a break-glass rollback)."""
    row = Remediation.objects.filter(request_id=request_id).first()
    if row is None:
        return None
    return approved_at(row) + dt.timedelta(hours=settings.REMEDIATION_RETRY_HOURS)


def approved_at(row: Remediation) -> dt.datetime:
    """When the request became executable: its last approval, or its filing for a break-glass rollback."""
    return max((read_time(signed["at"]) for signed in row.approvals), default=row.requested_at)


def remediation_report(request_id: str, *, ok: bool, detail: dict[str, Any], signed_at: int) -> RemediationAggregate:
    """Apply the pipeline's signed completion report, signed at `signed_at` (Unix seconds)."""
    # The stamp has whole seconds: a report signed in the second its execution began counts.
    until = dt.datetime.fromtimestamp(signed_at + 1, dt.UTC)
    version_when_signed = aggregate_load(RemediationAggregate(request_id), until=until).version
    return remediation_execute(
        request_id,
        lambda r: r.report(ok=ok, detail=detail, version_when_signed=version_when_signed),
        actor=PIPELINE,
    )


def remediations_expire(now: dt.datetime | None = None) -> int:
    moment = now or dt.datetime.now(dt.UTC)
    expired = 0
    due = Remediation.objects.filter(state=RemediationState.REQUESTED, expires_at__lte=moment)
    for request_id in due.values_list("request_id", flat=True):
        done = aggregate_execute(
            functools.partial(RemediationAggregate, str(request_id)),
            lambda r: r.expire(format_time(moment)),
            actor=EXECUTOR,
        )
        expired += bool(done.recorded)
    return expired


# How long an approved request may wait for the task its approval queued before beat queues it
# again (the broker was unreachable at the commit, or the message was lost).
STRANDED_AFTER = dt.timedelta(minutes=1)


def remediations_stranded(now: dt.datetime | None = None, *, queue: bool = False) -> list[str]:
    """Approved requests not carried out STRANDED_AFTER their approval: nothing else ever runs
    them (retry, cancel and abandon take no approved request). With `queue`, each is queued
    again; a second message for one that runs meanwhile finds it no longer approved."""
    from monitoring.remediation.tasks import execute_remediation

    moment = now or dt.datetime.now(dt.UTC)
    stranded = []
    for row in Remediation.objects.filter(state=RemediationState.APPROVED).order_by("requested_seq"):
        if approved_at(row) <= moment - STRANDED_AFTER:
            stranded.append(str(row.request_id))
    for request_id in stranded if queue else []:
        execute_remediation.delay(request_id)
    return stranded


def remediations_lapsed(now: dt.datetime | None = None) -> list[str]:
    """Expire each approved request not carried out within REMEDIATION_RETRY_HOURS of its
    approval (its task never ran: the workers or the broker were down that long). An approval
    holds for the world it was given in: a rollback approved days ago is not made today."""
    moment = now or dt.datetime.now(dt.UTC)
    lapsed = []
    for row in Remediation.objects.filter(state=RemediationState.APPROVED).order_by("requested_seq"):
        until = approved_at(row) + dt.timedelta(hours=settings.REMEDIATION_RETRY_HOURS)
        if until > moment:
            continue
        if _lapse(str(row.request_id), now=format_time(moment), until=format_time(until)).recorded:
            lapsed.append(str(row.request_id))
    return lapsed


def _lapse(request_id: str, *, now: str, until: str) -> Executed[RemediationAggregate]:
    """Record that the approval lapsed (nothing when the request no longer waits), with its
    alert: both or neither."""
    with transaction.atomic():
        done = aggregate_execute(
            functools.partial(RemediationAggregate, request_id),
            functools.partial(RemediationAggregate.lapse, now=now, until=until),
            actor=EXECUTOR,
        )
        if done.recorded:
            _lapse_alert(done.aggregate, cause=done.recorded[-1].event_id)
    return done


def _lapse_alert(request: RemediationAggregate, *, cause: str) -> None:
    """The change its approvers asked for was not made: whoever watches the model is told, as
    of an emergency rollback that never ran (critical)."""
    finding = Finding(
        check="approval_lapsed",
        subject=request.request_id,
        severity=Level.CRITICAL if request.break_glass else Level.WARNING,
        summary=(
            f"approved {'break-glass ' if request.break_glass else ''}{request.kind} {request.request_id} was not "
            "carried out before its approval lapsed (workers or broker down): file a new request if still needed"
        ),
    )
    alert_raise(model=request.model, finding=finding, actor=EXECUTOR, causation=cause)


def remediations_stalled(now: dt.datetime | None = None) -> list[str]:
    """Fail each request still executing past its deadline: longer than its task may run (the
    worker was killed or lost, and its redelivered task leaves an executing request alone), or,
    for a retrain, REMEDIATION_REPORT_HOURS without its pipeline's report (the trigger was lost
    with its worker, or the pipeline stopped without reporting). Failed, it is retried within
    its approval's hours, or abandoned."""
    from monitoring.remediation.tasks import EXECUTION_TIME_LIMIT

    moment = now or dt.datetime.now(dt.UTC)
    task_ended = moment - dt.timedelta(seconds=EXECUTION_TIME_LIMIT) - STRANDED_AFTER
    report_overdue = moment - dt.timedelta(hours=settings.REMEDIATION_REPORT_HOURS)
    failed = []
    for request_id, kind in Remediation.objects.filter(state=RemediationState.EXECUTING).values_list(
        "request_id", "kind"
    ):
        awaits_report = kind in AWAITS_REPORT
        started = (
            EventRow.objects.filter(
                stream_type=STREAM, stream_id=str(request_id), event_type=RemediationExecutionStarted.type_name
            )
            .order_by("-stream_version")
            .first()
        )
        if started is None or started.occurred_at > (report_overdue if awaits_report else task_ended):
            continue
        until = retry_deadline(str(request_id))
        then = "retry or abandon it" if until is not None and moment < until else _TOO_LATE_TO_RETRY
        error = f"{_report_overdue() if awaits_report else WORKER_LOST} ({then})"
        done = aggregate_execute(
            functools.partial(RemediationAggregate, str(request_id)),
            functools.partial(_fail_lost, started=started.stream_version, error=error),
            actor=EXECUTOR,
        )
        failed += [str(request_id)] if done.recorded else []
    return failed


WORKER_LOST = "no outcome within the task's time limit: the worker carrying it out was killed or lost"
_TOO_LATE_TO_RETRY = "its approval's hours for a retry are over: abandon it, and file a new request if still needed"


def _report_overdue() -> str:
    hours = settings.REMEDIATION_REPORT_HOURS
    return (
        f"no report from the retraining pipeline within {hours} h (REMEDIATION_REPORT_HOURS): "
        "its trigger was lost with its worker, or the pipeline stopped without reporting"
    )


def _fail_lost(request: RemediationAggregate, *, started: int, error: str) -> list[Event]:
    """The execution that began at stream version `started`, failed, unless it ended meanwhile."""
    if request.state is not RemediationState.EXECUTING or request.version != started:
        return []
    return request.finish(ok=False, detail={"error": error})


def break_glass_overdue(now: dt.datetime | None = None) -> list[RecordedEvent]:
    """An alert for each break-glass rollback not reviewed within REMEDIATION_REVIEW_MINUTES."""
    moment = now or dt.datetime.now(dt.UTC)
    deadline = moment - dt.timedelta(minutes=settings.REMEDIATION_REVIEW_MINUTES)
    recorded = []
    unreviewed = Remediation.objects.filter(break_glass=True, reviewed_by="", requested_at__lte=deadline)
    for request in unreviewed.exclude(state=RemediationState.EXPIRED):  # lapsed unmade: nothing to review
        finding = Finding(
            check="break_glass_review",
            subject=str(request.request_id),
            severity=Level.CRITICAL,
            summary=(
                f"break-glass rollback {request.request_id} by {request.requested_by} awaits a second person's review"
            ),
        )
        if not alert_open(finding.key(request.model_name)):
            recorded += alert_raise(model=request.model_name, finding=finding, actor=EXECUTOR)
    return recorded


def _carry_out(request: RemediationAggregate) -> dict[str, Any]:
    p, request_id, model = request.parameters, request.request_id, request.model
    why = f"approved remediation {request_id}"
    change = deployment_of(request.kind or "", p)
    if change is not None:
        action, version, share = change
        order = DeploymentChange(model, action, version, share, EXECUTOR, why, request_id)
        return {"executors": [executor.execute(order) for executor in configured_executors()]}
    match request.kind:
        case RemediationKind.THRESHOLD_CHANGE:
            from monitoring.policies.services import policy_set

            recorded = policy_set(model=model, policy=p["policy"], actor=EXECUTOR, reason=why, approval=request_id)
            return {"policy_version": recorded[-1].payload["version"], "seq": recorded[-1].seq}
        case RemediationKind.RETIRE_VERSION:
            recorded = version_retire(name=model, version=p["version"], actor=EXECUTOR, reason=why, approval=request_id)
            return {"retired": p["version"], "seq": recorded[-1].seq}
        case RemediationKind.RETIRE_MODEL:
            recorded = model_retire(name=model, actor=EXECUTOR, reason=why, approval=request_id)
            return {"retired": model, "seq": recorded[-1].seq}
        case RemediationKind.SCHEMA_CHANGE:
            recorded = model_update(
                name=model, data_schema=p["data_schema"], actor=EXECUTOR, reason=why, approval=request_id
            )
            return {"schema_version": recorded[-1].payload["schema_version"], "seq": recorded[-1].seq}
        case RemediationKind.REFERENCE_CHANGE:
            body, content_type = staged_reference(model=model, digest=str(p["batch"]))
            adoption = Adoption(request_id, str(p["batch"]))
            ingested = batch_ingest(
                model=model, kind="reference", body=body, content_type=content_type, actor=EXECUTOR, adoption=adoption
            )
            return {"batch": ingested.sha256, "rows": ingested.rows, "seq": ingested.seq}
        case RemediationKind.ACCEPT_RISK:
            until = read_time(str(p["until"]))

            def silence(alert: AlertAggregate) -> list[Event]:
                # The request's model is checked again in the alert's own stream: the approval
                # covers a risk of this model only.
                if alert.model != model:
                    raise InvalidCommand(f"alert {alert.alert_id} is not an alert of {model}")
                return alert.silence(until, dt.datetime.now(dt.UTC), max_hours=None)

            alert_execute(
                str(p["alert_id"]), silence, actor=EXECUTOR, reason=f"risk accepted by remediation {request_id}"
            )
            return {"silenced": str(p["alert_id"]), "until": str(p["until"])}
    from monitoring.remediation.pipelines import retrain_submit

    return retrain_submit(request)


def _check_target(model: str, kind: str, parameters: dict[str, Any]) -> None:
    """Refuse at request time what could not be executed (the same rules run again then): the
    change is tried, as approved, on the current state, and nothing is recorded."""
    if (
        kind not in set(RemediationKind)
        or not PARAMETERS[RemediationKind(kind)] <= set(parameters)
        or nested_parameters(parameters)
    ):
        return  # the aggregate names what is wrong with the kind or its parameters
    aggregate = model_load(model)
    change = deployment_of(kind, parameters)
    try:
        if change is not None:
            action, version, share = change
            aggregate.change_deployment(action, None if version is None else str(version), share, approved=True)
        elif kind == RemediationKind.RETIRE_VERSION:
            aggregate.retire_version(str(parameters["version"]), approved=True)
        elif kind == RemediationKind.RETIRE_MODEL:
            aggregate.retire(approved=True)
        elif kind == RemediationKind.SCHEMA_CHANGE:
            aggregate.update(data_schema=parameters["data_schema"], approved=True)
        elif kind == RemediationKind.THRESHOLD_CHANGE:
            from monitoring.policies.services import policy_load

            policy = policy_load(model)
            if policy.completed(parameters["policy"]) == policy.policy:
                raise InvalidCommand("the proposed policy is the policy in force")
        elif kind == RemediationKind.ACCEPT_RISK:
            _check_accepted_risk(model, parameters["alert_id"], parameters["until"])
        elif kind == RemediationKind.REFERENCE_CHANGE:
            reference_check(model=model, digest=str(parameters["batch"]))
    except ModelNotFound as error:  # a parameter names what does not exist: a bad request
        raise InvalidCommand(str(error)) from error


def _check_accepted_risk(model: str, alert_id: Any, until: Any) -> None:
    """accept_risk names an unresolved alert of the request's own model, and a time to come."""
    named = _uuid(str(alert_id))
    alert = Alert.objects.filter(alert_id=named).first() if named else None
    if alert is None:
        raise InvalidCommand(f"accept_risk: alert_id names no alert: {alert_id!r}")
    if alert.model_name != model:
        raise InvalidCommand(f"accept_risk: alert {alert.alert_id} is an alert of {alert.model_name}, not of {model}")
    if alert.status == AlertStatus.RESOLVED:
        raise InvalidCommand(f"accept_risk: alert {alert.alert_id} is resolved: there is no risk left to accept")
    try:  # in UTC, as execution reads it: 9999-12-31T23:59:59-01:00 is past the calendar's end there
        moment = read_time(until).astimezone(dt.UTC) if isinstance(until, str) else None
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise InvalidCommand(f"accept_risk: until must be an ISO 8601 time such as 2027-01-31T00:00:00Z, not {until!r}")
    if moment <= dt.datetime.now(dt.UTC):
        raise InvalidCommand(f"accept_risk: until must be in the future, not {until!r}")


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _uuids(values: list[str]) -> list[str]:
    return [u for u in (_uuid(v) for v in values) if u]
