"""Projections that keep the monitoring read models in step with the log."""

from __future__ import annotations

import datetime as dt

from rest_framework_api_key.crypto import concatenate

from audit import projections
from audit.store import RecordedEvent
from monitoring.ingest.files import blob_path
from monitoring.models import Alert, Batch, Deployment, ModelApiKey, ModelVersion, RegisteredModel, Remediation, Run


def _model_registered(event: RecordedEvent) -> None:
    payload = event.payload
    RegisteredModel.objects.create(
        name=payload["name"],
        task=payload["task"],
        owner=payload["owner"],
        description=payload.get("description", ""),
        data_schema=payload["data_schema"],
        schema_version=1,
        registered_at=event.occurred_at,
        registered_seq=event.seq,
    )


def _model_updated(event: RecordedEvent) -> None:
    payload = event.payload
    changes = {key: payload[key] for key in ("owner", "description", "data_schema") if key in payload}
    RegisteredModel.objects.filter(name=payload["name"]).update(
        **changes, schema_version=payload["schema_version"], updated_seq=event.seq
    )


def _model_retired(event: RecordedEvent) -> None:
    RegisteredModel.objects.filter(name=event.payload["name"]).update(retired=True, updated_seq=event.seq)


def _version_registered(event: RecordedEvent) -> None:
    payload = event.payload
    ModelVersion.objects.create(
        model_id=payload["name"],
        version=payload["version"],
        artifact_uri=payload["artifact_uri"],
        training_data_digest=payload.get("training_data_digest", ""),
        notes=payload.get("notes", ""),
        registered_at=event.occurred_at,
        registered_seq=event.seq,
    )


def _version_retired(event: RecordedEvent) -> None:
    ModelVersion.objects.filter(model_id=event.payload["name"], version=event.payload["version"]).update(retired=True)


def _deployment_changed(event: RecordedEvent) -> None:
    payload = event.payload
    pointer = {key: payload[key] for key in ("champion", "challenger", "canary", "canary_share")}
    Deployment.objects.update_or_create(
        model_id=payload["name"], defaults={**pointer, "changed_at": event.occurred_at, "seq": event.seq}
    )
    serving = [v for v in (payload["champion"], payload["challenger"], payload["canary"]) if v is not None]
    ModelVersion.objects.filter(model_id=payload["name"], version__in=serving).update(served=True)


def _key_issued(event: RecordedEvent) -> None:
    payload = event.payload
    expires = payload["expires_at"]
    ModelApiKey.objects.create(
        id=concatenate(payload["key_id"], payload["hashed_key"]),
        prefix=payload["key_id"],
        hashed_key=payload["hashed_key"],
        name=payload["label"],
        expiry_date=dt.datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None,
        model_id=payload["name"],
        issued_by=event.envelope["actor"]["id"],
        issued_seq=event.seq,
    )
    # `created` is auto_now_add; a replay must keep the original time.
    ModelApiKey.objects.filter(prefix=payload["key_id"]).update(created=event.occurred_at)


def _key_revoked(event: RecordedEvent) -> None:
    ModelApiKey.objects.filter(prefix=event.payload["key_id"]).update(revoked=True)


def _batch_ingested(event: RecordedEvent) -> None:
    payload = event.payload
    Batch.objects.create(
        model_id=payload["model"],
        kind=payload["kind"],
        sha256=payload["file_digest"],
        rows=payload["rows"],
        path=blob_path(payload["file_digest"]),
        schema_version=payload["schema_version"],
        time_min=_time(payload.get("time_min")),
        time_max=_time(payload.get("time_max")),
        ingested_at=event.occurred_at,
        seq=event.seq,
    )


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _run_started(event: RecordedEvent) -> None:
    payload = event.payload
    Run.objects.create(
        run_id=payload["run_id"],
        model_name=payload["model"],
        policy_version=payload["policy_version"],
        window_start=_time(payload["window"].get("start")),
        window_end=_time(payload["window"].get("end")),
        status=Run.Status.RUNNING,
        started_at=event.occurred_at,
        started_seq=event.seq,
    )


def _run_completed(event: RecordedEvent) -> None:
    payload = event.payload
    levels = [c.get("status") for c in payload["checks"]]
    level = next((lvl for lvl in ("critical", "warning") if lvl in levels), "ok")
    Run.objects.filter(run_id=payload["run_id"]).update(
        status=Run.Status.COMPLETED,
        level=level,
        checks=payload["checks"],
        result_digest=payload.get("result_digest", ""),
        input_digests=payload.get("input_digests", []),
        finished_seq=event.seq,
    )


def _run_diagnosed(event: RecordedEvent) -> None:
    payload = dict(event.payload)
    Run.objects.filter(run_id=payload.pop("run_id")).update(
        diagnosis={k: v for k, v in payload.items() if k != "model"}
    )


def _performance_realized(event: RecordedEvent) -> None:
    payload = dict(event.payload)
    Run.objects.filter(run_id=payload.pop("run_id")).update(realized={k: v for k, v in payload.items() if k != "model"})


def _run_failed(event: RecordedEvent) -> None:
    payload = event.payload
    Run.objects.filter(run_id=payload["run_id"]).update(
        status=Run.Status.FAILED, error=payload["error"], finished_seq=event.seq
    )


def _alert_raised(event: RecordedEvent) -> None:
    payload = event.payload
    subject = payload.get("feature") or ""
    Alert.objects.create(
        alert_id=payload["alert_id"],
        model_name=payload["model"],
        check_name=payload["check"],
        feature=subject,
        segment=payload.get("segment", ""),
        severity=payload["severity"],
        summary=payload["summary"],
        run_id=payload.get("run_id", ""),
        raised_at=event.occurred_at,
        raised_seq=event.seq,
    )


def _alert_changed(event: RecordedEvent) -> None:
    payload, kind = event.payload, event.type.removeprefix("monitoring.Alert")
    changes: dict = {"updated_seq": event.seq}
    if kind == "Updated":
        changes |= {"severity": payload["severity"], "summary": payload["summary"]}
    elif kind == "Acknowledged":
        changes |= {
            "status": "acknowledged",
            "acknowledged_by": event.envelope["actor"]["id"],
            "acknowledged_at": event.occurred_at,
        }
    elif kind == "Resolved":
        changes |= {"status": "resolved", "resolved_at": event.occurred_at, "resolution": payload["how"]}
    elif kind == "Escalated":
        changes |= {"escalated_at": event.occurred_at}
    elif kind == "Silenced":
        changes |= {"silenced_until": _time(payload["until"])}
    Alert.objects.filter(alert_id=payload["alert_id"]).update(**changes)


REGISTRY = projections.register(
    projections.Projection(
        name="monitoring.registry",
        handlers={
            "monitoring.ModelRegistered": _model_registered,
            "monitoring.ModelUpdated": _model_updated,
            "monitoring.ModelRetired": _model_retired,
            "monitoring.ModelVersionRegistered": _version_registered,
            "monitoring.ModelVersionRetired": _version_retired,
            "monitoring.DeploymentChanged": _deployment_changed,
            "monitoring.ApiKeyIssued": _key_issued,
            "monitoring.ApiKeyRevoked": _key_revoked,
            "monitoring.BatchIngested": _batch_ingested,
        },
        models=[RegisteredModel, ModelVersion, Deployment, ModelApiKey, Batch],  # a rebuild wipes them in reverse
    )
)
RUNS = projections.register(
    projections.Projection(
        name="monitoring.runs",
        handlers={
            "monitoring.RunStarted": _run_started,
            "monitoring.RunCompleted": _run_completed,
            "monitoring.RunFailed": _run_failed,
            "monitoring.RunDiagnosed": _run_diagnosed,
            "monitoring.PerformanceRealized": _performance_realized,
        },
        models=[Run],
    )
)
ALERTS = projections.register(
    projections.Projection(
        name="monitoring.alerts",
        handlers={
            "monitoring.AlertRaised": _alert_raised,
            **dict.fromkeys(
                [
                    "monitoring.AlertUpdated",
                    "monitoring.AlertAcknowledged",
                    "monitoring.AlertResolved",
                    "monitoring.AlertEscalated",
                    "monitoring.AlertSilenced",
                ],
                _alert_changed,
            ),
        },
        models=[Alert],
    )
)


def _remediation(event: RecordedEvent) -> None:
    payload, kind = event.payload, event.type.removeprefix("monitoring.Remediation")
    actor = event.envelope["actor"]
    if kind == "Requested":
        Remediation.objects.create(
            request_id=payload["request_id"],
            model_name=payload["model"],
            kind=payload["action"],
            parameters=payload["parameters"],
            evidence=payload["evidence"],
            state="approved" if payload.get("break_glass") else "requested",
            requested_by=actor["id"],
            required_approvals=payload.get("required_approvals", 1),
            break_glass=payload.get("break_glass", False),
            expires_at=_time(payload.get("expires_at")),
            requested_at=event.occurred_at,
            requested_seq=event.seq,
            updated_seq=event.seq,
        )
        return
    request = Remediation.objects.filter(request_id=payload["request_id"]).first()
    if request is None:
        return
    request.updated_seq = event.seq
    if kind == "Approved":
        request.approvals = [
            *request.approvals,
            {"by": actor["id"], "name": payload["signer_name"], "at": payload["signed_at"]},
        ]
        if len(request.approvals) >= request.required_approvals:
            request.state = "approved"
    elif kind == "Reviewed":
        request.reviewed_by = actor["id"]
    elif kind == "ExecutionStarted":
        request.state = "executing"
    elif kind == "Succeeded":
        request.state, request.result = "succeeded", payload["result"]
    elif kind == "Failed":
        request.state, request.error = "failed", payload["error"]
    else:  # Rejected, Cancelled, Expired, Abandoned
        request.state = kind.lower()
    request.save()


REMEDIATIONS = projections.register(
    projections.Projection(
        name="monitoring.remediations",
        handlers=dict.fromkeys(
            [
                f"monitoring.Remediation{k}"
                for k in (
                    "Requested",
                    "Approved",
                    "Rejected",
                    "Reviewed",
                    "Cancelled",
                    "Expired",
                    "ExecutionStarted",
                    "Succeeded",
                    "Failed",
                    "Abandoned",
                )
            ],
            _remediation,
        ),
        models=[Remediation],
    )
)
