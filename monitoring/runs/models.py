"""The read model of runs: a projection of the run streams, rebuilt by replay."""

from django.db import models

from monitoring.runs.domain import Level, RunStatus


class Run(models.Model):
    """A monitoring run as its events tell it."""

    run_id = models.UUIDField(primary_key=True)
    model_name = models.CharField(max_length=200, db_index=True)
    policy_version = models.IntegerField()
    revision = models.IntegerField(default=0)  # 1, 2, …: a re-run of the window a person asked for
    revises = models.UUIDField(null=True)  # the window's first run, for a re-run
    window_start = models.DateTimeField(null=True)
    window_end = models.DateTimeField(null=True)
    status = models.CharField(max_length=20, choices=RunStatus.choices())
    level = models.CharField(max_length=20, choices=Level.choices(), blank=True)  # the worst check's
    checks = models.JSONField(default=list)
    result_digest = models.CharField(max_length=64, blank=True)
    input_digests = models.JSONField(default=list)
    error = models.TextField(blank=True)
    diagnosis = models.JSONField(null=True)  # the latest, revised when labels changed what the run found
    realized = models.JSONField(null=True)  # the latest PerformanceRealized, once labels arrived
    started_at = models.DateTimeField()
    started_seq = models.BigIntegerField()
    finished_seq = models.BigIntegerField(null=True)
    finished_event_id = models.UUIDField(null=True)  # RunCompleted or RunFailed: what to cite
