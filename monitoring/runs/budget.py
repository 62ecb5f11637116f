"""A run's memory budget: a window that would not fit is refused before it is loaded, with the
figures, instead of taking the worker (and whatever shares its machine) down.

The estimate counts every value the run holds at once: the window, the reference (or baseline
period) and the labels, at BYTES_PER_VALUE each: a float64 or a pointer to shared text, plus
the working copies the checks make. Text values are bounded at ingestion (INGEST_MAX_TEXT_LENGTH)
and shared per distinct value, so they do not grow the estimate by their length."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Sum

from monitoring.ingestion.domain import BatchKind
from monitoring.ingestion.models import Batch

BYTES_PER_VALUE = 48
MB = 2**20


class RunOverBudget(ValueError):
    """The run would need more memory than RUN_MEMORY_BUDGET_MB."""


def run_rows_estimate(model: str, start: dt.datetime, end: dt.datetime, baseline: dt.timedelta | None) -> int:
    """Rows of every batch the run would read (whole batches: an upper bound)."""
    batches = Batch.objects.filter(model__name=model)
    window = batches.filter(kind=BatchKind.PREDICTIONS, time_max__gte=start, time_min__lt=end)
    if baseline is None:
        reference = batches.filter(kind=BatchKind.REFERENCE)
    else:
        reference = batches.filter(
            kind=BatchKind.PREDICTIONS, time_max__gte=start - baseline, time_min__lt=end - baseline
        )
    labels = batches.filter(kind=BatchKind.LABELS)
    return sum(query.aggregate(rows=Sum("rows"))["rows"] or 0 for query in (window, reference, labels))


def run_budget_check(rows: int, columns: int) -> None:
    """RunOverBudget when `rows` × `columns` values exceed the budget."""
    budget = settings.RUN_MEMORY_BUDGET_MB
    needed = rows * max(columns, 1) * BYTES_PER_VALUE
    if needed > budget * MB:
        raise RunOverBudget(
            f"the run would hold {rows:,} rows of {columns} columns, an estimated {needed / MB:,.0f} MB, over "
            f"the run memory budget of {budget:,} MB (RUN_MEMORY_BUDGET_MB): run a shorter window or raise the budget"
        )


def memory_limit_apply(megabytes: int) -> None:
    """Limit this process's data (heap and anonymous memory) to `megabytes`: past it an
    allocation fails with MemoryError, which the run records as its failure, instead of the
    kernel killing whatever process it picks. Worker processes call this as they start."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    wanted = megabytes * MB
    resource.setrlimit(resource.RLIMIT_DATA, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))
