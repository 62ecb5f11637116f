"""Read models of the monitoring domain: projections of the audit log, rebuilt by replay
(except IdempotentResponse, which remembers API answers and is not domain state)."""

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class RegisteredModel(models.Model):
    name = models.CharField(max_length=200, primary_key=True)
    task = models.CharField(max_length=40)
    owner = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    data_schema = models.JSONField(default=dict)
    schema_version = models.IntegerField(default=1)
    retired = models.BooleanField(default=False)
    registered_at = models.DateTimeField()
    registered_seq = models.BigIntegerField()
    updated_seq = models.BigIntegerField(null=True)


class ModelVersion(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=100)
    artifact_uri = models.TextField()
    training_data_digest = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    retired = models.BooleanField(default=False)
    served = models.BooleanField(default=False)
    registered_at = models.DateTimeField()
    registered_seq = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="model_version_unique")]


class Deployment(models.Model):
    """What serving systems poll. `seq` of the last change is the ETag."""

    model = models.OneToOneField(RegisteredModel, on_delete=models.CASCADE, primary_key=True)
    # NULL, not "": no version holds the role (the API answers null).
    champion = models.CharField(max_length=100, null=True)  # noqa: DJ001
    challenger = models.CharField(max_length=100, null=True)  # noqa: DJ001
    canary = models.CharField(max_length=100, null=True)  # noqa: DJ001
    canary_share = models.FloatField(default=0.0)
    changed_at = models.DateTimeField()
    seq = models.BigIntegerField()


class ModelApiKey(AbstractAPIKey):
    """A reporting key for one model (hashed with SHA-512 by djangorestframework-api-key)."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="api_keys")
    issued_by = models.CharField(max_length=200)
    issued_seq = models.BigIntegerField()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "model API key"


class Batch(models.Model):
    """One ingested batch: a content-addressed Parquet file and what it holds."""

    class Kind(models.TextChoices):
        REFERENCE = "reference"
        PREDICTIONS = "predictions"
        LABELS = "labels"
        KPIS = "kpis"

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="batches")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    sha256 = models.CharField(max_length=64)
    rows = models.IntegerField()
    path = models.CharField(max_length=300)
    schema_version = models.IntegerField()
    time_min = models.DateTimeField(null=True)
    time_max = models.DateTimeField(null=True)
    ingested_at = models.DateTimeField()
    seq = models.BigIntegerField(unique=True)

    class Meta:
        indexes = [models.Index(fields=["model", "kind", "time_min", "time_max"])]


class Run(models.Model):
    """A monitoring run as its events tell it."""

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    run_id = models.UUIDField(primary_key=True)
    model_name = models.CharField(max_length=200, db_index=True)
    policy_version = models.IntegerField()
    # Null when the run's window is not a time range (RunStarted schema 1 leaves it free-form).
    window_start = models.DateTimeField(null=True)
    window_end = models.DateTimeField(null=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    level = models.CharField(max_length=20, blank=True)  # the worst check: ok, warning or critical
    checks = models.JSONField(default=list)
    result_digest = models.CharField(max_length=64, blank=True)
    input_digests = models.JSONField(default=list)
    error = models.TextField(blank=True)
    diagnosis = models.JSONField(null=True)
    realized = models.JSONField(null=True)  # the latest PerformanceRealized, once labels arrived
    started_at = models.DateTimeField()
    started_seq = models.BigIntegerField()
    finished_seq = models.BigIntegerField(null=True)


class Alert(models.Model):
    """One occurrence of a failing condition. At most one unresolved alert per dedupe key: a
    database invariant, so concurrent runs cannot raise the same alert twice."""

    alert_id = models.UUIDField(primary_key=True)
    model_name = models.CharField(max_length=200, db_index=True)
    check_name = models.CharField(max_length=100)
    feature = models.CharField(max_length=200, blank=True)
    segment = models.CharField(max_length=300, blank=True)
    dedupe_key = models.CharField(max_length=700, blank=True)
    severity = models.CharField(max_length=20)
    summary = models.TextField()
    status = models.CharField(max_length=20, default="open")  # open, acknowledged, resolved
    run_id = models.CharField(max_length=36, blank=True)
    acknowledged_by = models.CharField(max_length=200, blank=True)
    acknowledged_at = models.DateTimeField(null=True)
    resolved_at = models.DateTimeField(null=True)
    resolution = models.CharField(max_length=20, blank=True)  # auto or manual
    escalated_at = models.DateTimeField(null=True)
    silenced_until = models.DateTimeField(null=True)
    raised_at = models.DateTimeField()
    raised_seq = models.BigIntegerField()
    updated_seq = models.BigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=~models.Q(status="resolved") & ~models.Q(dedupe_key=""),
                name="one_unresolved_alert_per_condition",
            )
        ]


class Notification(models.Model):
    """The outbox: one row per alert event and notifier, written with the event."""

    notifier = models.CharField(max_length=100)
    event_seq = models.BigIntegerField()
    message = models.JSONField()
    status = models.CharField(max_length=20, default="pending")  # pending, sent, failed
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(auto_now_add=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"])]


class NotificationAttempt(models.Model):
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(auto_now_add=True)
    ok = models.BooleanField()
    detail = models.TextField()


class IdempotentResponse(models.Model):
    """The first answer to a request carrying an Idempotency-Key, replayed to its retries."""

    scope = models.CharField(max_length=300)  # who sent it and where: principal and path
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)  # SHA-256 of method, path and body
    status = models.IntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_unique")]


class Remediation(models.Model):
    """A remediation request as its events tell it."""

    request_id = models.UUIDField(primary_key=True)
    model_name = models.CharField(max_length=200, db_index=True)
    kind = models.CharField(max_length=40)
    parameters = models.JSONField(default=dict)
    evidence = models.JSONField(default=list)
    state = models.CharField(max_length=20, db_index=True)
    requested_by = models.CharField(max_length=200)
    required_approvals = models.IntegerField(default=1)
    approvals = models.JSONField(default=list)  # [{"by", "name", "at"}]
    break_glass = models.BooleanField(default=False)
    reviewed_by = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True)
    result = models.JSONField(null=True)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField()
    requested_seq = models.BigIntegerField()
    updated_seq = models.BigIntegerField()
