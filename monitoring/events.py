"""Event types of the monitoring domain (schema 1). A released type never changes meaning."""

from audit import registry

NoneType = type(None)

MODEL_REGISTERED = registry.register(
    "monitoring.ModelRegistered",
    schema=1,
    required={"name": str, "task": str, "owner": str, "data_schema": dict},
    optional={"description": str},
    description="A model is put under monitoring.",
)
RUN_STARTED = registry.register(
    "monitoring.RunStarted",
    schema=1,
    required={"run_id": str, "model": str, "policy_version": int, "window": dict},
    description="A monitoring run begins on a window of the model's data.",
)
RUN_COMPLETED = registry.register(
    "monitoring.RunCompleted",
    schema=1,
    required={"run_id": str, "model": str, "status": str, "checks": list},
    optional={"result_digest": str, "input_digests": list},
    description="A monitoring run finished; per check: statistic, p-value or distance, threshold, status.",
)
THRESHOLD_CHANGED = registry.register(
    "monitoring.ThresholdChanged",
    schema=1,
    required={"model": str, "check": str, "metric": str, "previous": (float, NoneType), "new": float},
    optional={"feature": str, "level": str},
    description="A monitoring threshold is changed; the reason is in the envelope.",
)
ALERT_RAISED = registry.register(
    "monitoring.AlertRaised",
    schema=1,
    required={"alert_id": str, "model": str, "check": str, "severity": str, "summary": str},
    optional={"feature": str, "segment": str, "run_id": str},
    description="A check crossed its threshold.",
)
REMEDIATION_REQUESTED = registry.register(
    "monitoring.RemediationRequested",
    schema=1,
    required={"request_id": str, "model": str, "action": str, "parameters": dict, "evidence": list},
    description="Someone asks for a rollback, retraining or threshold change; evidence cites events.",
)
REMEDIATION_APPROVED = registry.register(
    "monitoring.RemediationApproved",
    schema=1,
    required={"request_id": str, "signer_name": str, "signed_at": str, "meaning": str},
    description="An approver signs the request (21 CFR 11.50: printed name, time, meaning).",
)
MODEL_UPDATED = registry.register(
    "monitoring.ModelUpdated",
    schema=1,
    required={"name": str, "schema_version": int},
    optional={"owner": str, "description": str, "data_schema": dict},
    description="A model's owner, description or data schema changes; a new data schema bumps schema_version.",
)
MODEL_RETIRED = registry.register(
    "monitoring.ModelRetired",
    schema=1,
    required={"name": str},
    description="A model leaves production: it accepts no more data and no deployment change.",
)
VERSION_REGISTERED = registry.register(
    "monitoring.ModelVersionRegistered",
    schema=1,
    required={"name": str, "version": str, "artifact_uri": str},
    optional={"training_data_digest": str, "notes": str},
    description="A trained version of the model is registered (it serves nothing until promoted).",
)
VERSION_RETIRED = registry.register(
    "monitoring.ModelVersionRetired",
    schema=1,
    required={"name": str, "version": str},
    description="A version may no longer be deployed or rolled back to.",
)
DEPLOYMENT_CHANGED = registry.register(
    "monitoring.DeploymentChanged",
    schema=1,
    required={
        "name": str,
        "action": str,
        "champion": (str, NoneType),
        "challenger": (str, NoneType),
        "canary": (str, NoneType),
        "canary_share": float,
    },
    description=(
        "What serving reads changed: action is promote (champion), rollback (champion back to an earlier "
        "version), challenger, canary (version and share) or canary_stop. The fields are the new pointer."
    ),
)
API_KEY_ISSUED = registry.register(
    "monitoring.ApiKeyIssued",
    schema=1,
    required={"name": str, "key_id": str, "label": str, "hashed_key": str, "expires_at": (str, NoneType)},
    description="A reporting key for one model; only its SHA-512 hash is recorded, never the key.",
)
API_KEY_REVOKED = registry.register(
    "monitoring.ApiKeyRevoked",
    schema=1,
    required={"name": str, "key_id": str},
    description="A reporting key stops working.",
)
BATCH_INGESTED = registry.register(
    "monitoring.BatchIngested",
    schema=1,
    required={
        "model": str,
        "kind": str,
        "file_digest": str,
        "rows": int,
        "schema_version": int,
    },
    optional={"time_min": str, "time_max": str, "model_versions": list},
    description=(
        "A batch of reference rows, predictions, labels or KPIs, stored as a content-addressed Parquet "
        "file (blobs/<file_digest>, SHA-256): its row count, time range and the data schema version it "
        "was checked against. Evidence bundles with data carry the file."
    ),
)
POLICY_SET = registry.register(
    "monitoring.PolicySet",
    schema=1,
    required={"model": str, "version": int, "policy": dict},
    description="A model's monitoring policy, complete with defaults; the reason is in the envelope.",
)
RUN_FAILED = registry.register(
    "monitoring.RunFailed",
    schema=1,
    required={"run_id": str, "model": str, "error": str},
    description="A monitoring run could not finish; error says why.",
)
ALERT_UPDATED = registry.register(
    "monitoring.AlertUpdated",
    schema=1,
    required={"alert_id": str, "severity": str, "summary": str},
    optional={"run_id": str},
    description="An open alert's condition persists on a later run with another severity or figure.",
)
ALERT_ACKNOWLEDGED = registry.register(
    "monitoring.AlertAcknowledged",
    schema=1,
    required={"alert_id": str},
    description="Someone took the alert on; who is the event's actor.",
)
ALERT_RESOLVED = registry.register(
    "monitoring.AlertResolved",
    schema=1,
    required={"alert_id": str, "how": str},
    optional={"run_id": str},
    description="The alert ends: how is auto (its condition cleared on a later run) or manual (reason in envelope).",
)
ALERT_ESCALATED = registry.register(
    "monitoring.AlertEscalated",
    schema=1,
    required={"alert_id": str, "unacknowledged_minutes": int},
    description="Nobody acknowledged the alert in the configured time.",
)
ALERT_SILENCED = registry.register(
    "monitoring.AlertSilenced",
    schema=1,
    required={"alert_id": str, "until": str},
    description="Notifications for the alert are held until a time; the reason is in the envelope.",
)
RUN_DIAGNOSED = registry.register(
    "monitoring.RunDiagnosed",
    schema=1,
    required={"run_id": str, "model": str, "cause": str, "scope": str, "evidence": list, "actions": list},
    optional={"new_segments": list},
    description="The most likely cause of what a run found, with its evidence and the suggested actions.",
)
PERFORMANCE_REALIZED = registry.register(
    "monitoring.PerformanceRealized",
    schema=1,
    required={"run_id": str, "model": str, "metric": str, "realized": (float, NoneType), "labelled_rows": int},
    optional={"estimated": float, "lower": float, "upper": float, "within_band": bool},
    description=(
        "Labels arrived for a past run's window: the performance realized on it, beside what the run "
        "estimated then and whether it fell within the estimate's band."
    ),
)
REMEDIATION_REQUESTED_2 = registry.register(
    "monitoring.RemediationRequested",
    schema=2,
    required={"request_id": str, "model": str, "action": str, "parameters": dict, "evidence": list},
    optional={"required_approvals": int, "break_glass": bool, "expires_at": str},
    description=(
        "Schema 1, plus how many approvals the kind needs, whether it is a break-glass emergency "
        "rollback (executed at once, reviewed after), and when an undecided request expires."
    ),
)
for _name, _fields, _text in (
    (
        "RemediationRejected",
        {"request_id": str, "signer_name": str, "signed_at": str, "meaning": str},
        "An approver refuses the request, with an electronic signature (name, time, meaning).",
    ),
    (
        "RemediationReviewed",
        {"request_id": str, "signer_name": str, "signed_at": str, "meaning": str},
        "A second person reviews a break-glass rollback after the fact, with an electronic signature.",
    ),
    ("RemediationCancelled", {"request_id": str}, "The requester withdraws the request."),
    ("RemediationExpired", {"request_id": str}, "Nobody decided before the request's deadline."),
    ("RemediationExecutionStarted", {"request_id": str}, "An approved request starts executing."),
    ("RemediationSucceeded", {"request_id": str, "result": dict}, "The executors carried the request out."),
    ("RemediationFailed", {"request_id": str, "error": str}, "Execution failed; it may be retried or abandoned."),
    ("RemediationAbandoned", {"request_id": str}, "A failed request is given up; the reason is in the envelope."),
):
    registry.register(f"monitoring.{_name}", schema=1, required=_fields, description=_text)
