"""Read models of alerting: alerts (a projection of the alert streams) and the notification
outbox (written with the alert events, never rebuilt)."""

from django.db import models

from monitoring.alerting.domain import AlertStatus, Resolution


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
    status = models.CharField(max_length=20, choices=AlertStatus.choices(), default=AlertStatus.OPEN.value)
    run_id = models.CharField(max_length=36, blank=True)
    window_end = models.DateTimeField(null=True)  # of the latest run that found the condition
    acknowledged_by = models.CharField(max_length=200, blank=True)
    acknowledged_at = models.DateTimeField(null=True)
    resolved_at = models.DateTimeField(null=True)
    resolution = models.CharField(max_length=20, choices=Resolution.choices(), blank=True)
    escalated_at = models.DateTimeField(null=True)
    silenced_until = models.DateTimeField(null=True)
    raised_at = models.DateTimeField()
    raised_seq = models.BigIntegerField()
    raised_event_id = models.UUIDField(null=True)  # the AlertRaised event, to cite
    updated_seq = models.BigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=~models.Q(status=AlertStatus.RESOLVED.value) & ~models.Q(dedupe_key=""),
                name="one_unresolved_alert_per_condition",
            )
        ]


class Notification(models.Model):
    """The outbox, written with the alert events: one row per notifier, incident and kind of
    alert event not yet sent (the first event's seq)."""

    notifier = models.CharField(max_length=100)
    event_seq = models.BigIntegerField()
    incident = models.CharField(max_length=60, blank=True)  # run:<run id>, or alert:<alert id>
    message = models.JSONField()
    status = models.CharField(max_length=20, default="pending")  # outbox.Delivery: pending, sent, failed
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(auto_now_add=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["incident", "notifier"], name="notification_incident"),
        ]


class NotificationAttempt(models.Model):
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(auto_now_add=True)
    ok = models.BooleanField()
    detail = models.TextField()
