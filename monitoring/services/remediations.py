"""Remediation commands: request, decide (four eyes, re-authenticated, signed), execute,
cancel, expire, review break-glass, and the alert for an overdue review.

Two approvers acting at once append against the same stream version: one wins, the other's
command is re-run on the new state and answers with what it finds (already approved)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest

from audit.envelope import format_time
from audit.models import Event
from audit.selectors import stream_events
from audit.store import Actor, ConcurrencyConflict, NewEvent, RecordedEvent, append
from monitoring.aggregates import InvalidCommand, ModelNotFound
from monitoring.executors import DeploymentChange, configured_executors
from monitoring.models import Alert, RegisteredModel, Remediation
from monitoring.remediation import PARAMETERS, RemediationAggregate, Signer
from monitoring.services.registry import model_load

STREAM = "remediation"
EXECUTOR = Actor("system", "remediation-executor", "Driftledger remediation executor")
PIPELINE = Actor("service", "pipeline-callback", "External pipeline (signed callback)")
APPROVER_ROLES = ("risk_approver",)
ATTEMPTS = 3


class ReauthenticationFailed(InvalidCommand):
    pass


def remediation_load(request_id: str) -> RemediationAggregate:
    return RemediationAggregate.replay(
        request_id, stream_events(STREAM, request_id, "event_type", "payload", "actor_id")
    )


def remediation_execute_command(
    request_id: str,
    command: Callable[[RemediationAggregate], list],
    *,
    actor: Actor,
    reason: str | None = None,
    causation: str | None = None,
) -> tuple[list[RecordedEvent], RemediationAggregate]:
    for attempt in range(ATTEMPTS):
        with transaction.atomic():
            request = remediation_load(request_id)
            changes = command(request)
            events = [
                NewEvent(STREAM, request_id, kind, payload, actor, reason=reason, causation_id=causation)
                for kind, payload in changes
            ]
            try:
                recorded = append(events, expected={(STREAM, request_id): request.version}) if events else []
            except ConcurrencyConflict:
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            before = request.state
            for kind, payload in changes:
                request.apply(kind, payload, actor.id)
            if before != "approved" and request.state == "approved":  # quorum reached, or break-glass
                transaction.on_commit(lambda: _execute_later(request_id))
            return recorded, request
    raise AssertionError("unreachable")


def remediation_request(
    *,
    model: str,
    kind: str,
    parameters: dict[str, Any],
    evidence: list[str],
    actor: Actor,
    reason: str,
    break_glass: bool = False,
) -> str:
    if not RegisteredModel.objects.filter(name=model, retired=False).exists():
        raise ModelNotFound(f"no active model named {model!r}")
    _check_target(model, kind, parameters)
    known = {str(e) for e in Event.objects.filter(event_id__in=_uuids(evidence)).values_list("event_id", flat=True)}
    missing = [e for e in evidence if _uuid(e) not in known]
    if missing:
        raise InvalidCommand(f"evidence must cite events of the log; unknown: {', '.join(missing[:5])}")
    request_id = str(uuid.uuid4())
    required = settings.REMEDIATION_APPROVALS.get(kind, 1)
    expires = format_time(dt.datetime.now(dt.UTC) + dt.timedelta(hours=settings.REMEDIATION_EXPIRY_HOURS))

    def command(request: RemediationAggregate) -> list:
        return request.request(
            model=model,
            kind=kind,
            parameters=parameters,
            evidence=evidence,
            required=required,
            expires_at=expires,
            break_glass=break_glass,
        )

    cause = _uuid(evidence[0]) if evidence else None  # the run or alert the request answers
    remediation_execute_command(request_id, command, actor=actor, reason=reason, causation=cause)
    return request_id


def remediation_decide(
    *, request_id: str, decision: str, user, password: str, reason: str, request=None
) -> RemediationAggregate:
    """approve, reject or review, after the person re-enters their password."""
    if request is None:  # a command line, not an HTTP request: still counted by the lockout
        request = HttpRequest()
        request.META["REMOTE_ADDR"] = "127.0.0.1"
    if authenticate(request, username=user.username, password=password) is None:
        raise ReauthenticationFailed("re-authentication failed: the password is not this user's")
    signer = Signer(
        id=user.username,
        name=user.get_full_name() or user.username,
        is_approver=user.is_superuser or user.groups.filter(name__in=APPROVER_ROLES).exists(),
        signed_at=format_time(dt.datetime.now(dt.UTC)),
    )
    actor = Actor("user", user.username, signer.name)
    step = {
        "approve": lambda r: r.approve(signer),
        "reject": lambda r: r.reject(signer),
        "review": lambda r: r.review(signer),
    }[decision]
    return remediation_execute_command(request_id, step, actor=actor, reason=reason)[1]


def remediation_run(request_id: str) -> RemediationAggregate:
    """Carry out an approved (or failed, when retried) request with its executors."""
    _, request = remediation_execute_command(request_id, lambda r: r.start(), actor=EXECUTOR)
    try:
        result = _carry_out(request)
    except Exception as error:  # noqa: BLE001 - any executor failure is the execution's outcome
        failure = {"error": repr(error)}
        return remediation_execute_command(request_id, lambda r: r.finish(ok=False, detail=failure), actor=EXECUTOR)[1]
    if result.get("pending"):
        return request  # an external pipeline reports completion through the callback
    return remediation_execute_command(request_id, lambda r: r.finish(ok=True, detail=result), actor=EXECUTOR)[1]


def remediations_expire(now: dt.datetime | None = None) -> int:
    moment = format_time(now or dt.datetime.now(dt.UTC))
    expired = 0
    due = Remediation.objects.filter(state="requested", expires_at__lte=now or dt.datetime.now(dt.UTC))
    for request_id in due.values_list("request_id", flat=True):
        recorded, _ = remediation_execute_command(str(request_id), lambda r: r.expire(moment), actor=EXECUTOR)
        expired += bool(recorded)
    return expired


def break_glass_overdue(now: dt.datetime | None = None) -> list[RecordedEvent]:
    """An alert for each break-glass rollback not reviewed within REMEDIATION_REVIEW_MINUTES."""
    from monitoring.services.alerts import _raise

    moment = now or dt.datetime.now(dt.UTC)
    deadline = moment - dt.timedelta(minutes=settings.REMEDIATION_REVIEW_MINUTES)
    recorded = []
    for request in Remediation.objects.filter(break_glass=True, reviewed_by="", requested_at__lte=deadline):
        key = f"{request.model_name}|break_glass_review|{request.request_id}|"
        if Alert.objects.filter(dedupe_key=key).exclude(status="resolved").exists():
            continue
        check = {"check": "break_glass_review", "metric": str(request.request_id), "status": "critical"}
        summary = f"break-glass rollback {request.request_id} by {request.requested_by} awaits a second person's review"
        recorded += _raise(request.model_name, check, key, "critical", summary, "", EXECUTOR, None)
    return recorded


def _carry_out(request: RemediationAggregate) -> dict[str, Any]:
    p = request.parameters
    deployment = {
        "rollback": ("rollback", p.get("to_version"), None),
        "promote_challenger": ("promote", p.get("version"), None),
        "canary_start": ("canary", p.get("version"), p.get("share")),
        "canary_stop": ("canary_stop", None, None),
    }
    if request.kind in deployment:
        action, version, share = deployment[request.kind]
        change = DeploymentChange(request.model, action, version, share, EXECUTOR, f"remediation {request.request_id}")
        return {"executors": [executor.execute(change) for executor in configured_executors()]}
    if request.kind == "threshold_change":
        from monitoring.services.policies import policy_set

        recorded = policy_set(
            model=request.model, policy=p["policy"], actor=EXECUTOR, reason=f"approved remediation {request.request_id}"
        )
        return {"policy_version_seq": recorded[-1].seq}
    if request.kind == "accept_risk":
        from monitoring.services.alerts import alert_execute

        until = dt.datetime.fromisoformat(str(p["until"]).replace("Z", "+00:00"))
        alert_execute(
            str(p["alert_id"]),
            lambda a: a.silence(until, dt.datetime.now(dt.UTC)),
            actor=EXECUTOR,
            reason=f"risk accepted by remediation {request.request_id}",
        )
        return {"silenced": str(p["alert_id"]), "until": str(p["until"])}
    from monitoring.services.pipelines import retrain_submit

    return retrain_submit(request)


def _check_target(model: str, kind: str, parameters: dict[str, Any]) -> None:
    """Refuse at request time what could not be executed (the same rules run again then)."""
    aggregate = model_load(model)
    checks = {
        "rollback": lambda: aggregate.rollback(str(parameters.get("to_version"))),
        "promote_challenger": lambda: aggregate.promote(str(parameters.get("version"))),
        "canary_start": lambda: aggregate.start_canary(str(parameters.get("version")), parameters.get("share")),
        "canary_stop": lambda: aggregate.stop_canary(),
    }
    if kind in checks and PARAMETERS[kind] <= set(parameters):
        try:
            checks[kind]()
        except ModelNotFound as error:  # a parameter names what does not exist: a bad request
            raise InvalidCommand(str(error)) from error


def _execute_later(request_id: str) -> None:
    from monitoring.tasks import execute_remediation

    execute_remediation.delay(request_id)


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _uuids(values: list[str]) -> list[str]:
    return [u for u in (_uuid(v) for v in values) if u]
