"""The read model of runs: a projection of the run streams, rebuilt by replay."""

from django.db import models
from django.utils import timezone

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


class RunFanout(models.Model):
    """A run computed by several workers: what every part reads (the batches, the policy) is
    fixed here when it is planned, so that each part and the combining task see the same
    window. Working state, not a record: the run's events say what was computed."""

    run_id = models.UUIDField(primary_key=True)
    model_name = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    revision = models.IntegerField(default=0)
    actor = models.JSONField()  # who the run is recorded as
    policy_version = models.IntegerField()
    policy = models.TextField()  # JSON as the policy reads, key order and all
    inputs = models.TextField()  # JSON: batch digests per kind
    combine_columns = models.JSONField()  # what the combining task loads
    # The model's data schema and task as planned: a schema edited while the parts run would
    # give parts and a combining task that read the window two ways, a result of neither schema.
    data_schema = models.JSONField(null=True)  # null: planned before it was kept (the registry's)
    task = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    progressed_at = models.DateTimeField(default=timezone.now)  # planned or a part measured: the sweeper's clock

    class Meta:
        db_table = "monitoring_run_fanout"


class RunPart(models.Model):
    """One group of features of a fanned-out run, and what it measured once done."""

    fanout = models.ForeignKey(RunFanout, on_delete=models.CASCADE, related_name="parts")
    index = models.IntegerField()
    features = models.JSONField()  # the feature names this part measures
    result = models.TextField(blank=True)  # monitoring.runs.parts.parts_dump once measured, empty before

    class Meta:
        db_table = "monitoring_run_part"
        constraints = [models.UniqueConstraint(fields=["fanout", "index"], name="run_part_once")]
