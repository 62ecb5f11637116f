"""The Celery app; configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("driftledger")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # audit.tasks
# Each monitoring concept keeps its own tasks module.
app.autodiscover_tasks(["monitoring.runs", "monitoring.alerting", "monitoring.remediation"])
