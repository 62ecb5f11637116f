"""The read model of remediation requests: a projection of the remediation streams."""

from django.db import models

from monitoring.remediation.domain import RemediationKind, RemediationState


class Remediation(models.Model):
    """A remediation request as its events tell it."""

    request_id = models.UUIDField(primary_key=True)
    model_name = models.CharField(max_length=200, db_index=True)
    kind = models.CharField(max_length=40, choices=RemediationKind.choices())
    parameters = models.JSONField(default=dict)
    evidence = models.JSONField(default=list)
    state = models.CharField(max_length=20, choices=RemediationState.choices(), db_index=True)
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
    requested_event_id = models.UUIDField(null=True)
    updated_seq = models.BigIntegerField()
