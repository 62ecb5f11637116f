"""Read models of the monitoring domain: projections of the audit log, rebuilt by replay."""

from django.db import models


class RegisteredModel(models.Model):
    name = models.CharField(max_length=200, primary_key=True)
    task = models.CharField(max_length=40)
    owner = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    registered_at = models.DateTimeField()
    registered_seq = models.BigIntegerField()


class Alert(models.Model):
    alert_id = models.UUIDField(primary_key=True)
    model_name = models.CharField(max_length=200, db_index=True)
    check_name = models.CharField(max_length=100)
    severity = models.CharField(max_length=20)
    summary = models.TextField()
    raised_at = models.DateTimeField()
    raised_seq = models.BigIntegerField()
