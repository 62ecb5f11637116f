"""Read models of ingestion: the batches received (a projection), and the remembered answers of
requests carrying an Idempotency-Key (not domain state, never rebuilt)."""

from django.db import models

from monitoring.ingestion.domain import BatchKind
from monitoring.registry.models import RegisteredModel


class Batch(models.Model):
    """One ingested batch: a content-addressed Parquet file and what it holds."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="batches")
    kind = models.CharField(max_length=20, choices=BatchKind.choices())
    sha256 = models.CharField(max_length=64)
    rows = models.IntegerField()
    path = models.CharField(max_length=300)
    schema_version = models.IntegerField()
    time_min = models.DateTimeField(null=True)
    time_max = models.DateTimeField(null=True)
    ingested_at = models.DateTimeField()
    seq = models.BigIntegerField(unique=True)
    event_id = models.UUIDField(null=True)  # the BatchIngested event, to cite

    class Meta:
        indexes = [models.Index(fields=["model", "kind", "time_min", "time_max"])]


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
