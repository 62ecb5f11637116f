"""The Celery app; configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("driftledger")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # audit.tasks
# Each monitoring concept keeps its own tasks module.
app.autodiscover_tasks(["monitoring.runs", "monitoring.alerting", "monitoring.remediation"])


@signals.worker_process_init.connect
def _limit_memory(**_) -> None:
    """Each worker process may hold a run's memory budget plus the headroom of the process itself."""
    from django.conf import settings

    from monitoring.runs.budget import memory_limit_apply

    memory_limit_apply(settings.RUN_MEMORY_BUDGET_MB + settings.RUN_MEMORY_HEADROOM_MB)


@signals.worker_init.connect
def _load_the_engine(**_) -> None:
    """Import the statistics engine (numpy, scipy, numba: seconds on a cold start) once, in the
    worker before it forks its processes: a run's time limit then measures the run, and a short
    limit never expires inside an import, before the run could record that it started."""
    import monitoring.runs.services  # noqa: F401
