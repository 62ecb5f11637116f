"""A run's memory budget: a window that would not fit is refused before it is loaded, with the
figures, instead of taking the worker (and whatever shares its machine) down.

The estimate is what one process holds at its peak: BASE_MB for the worker itself (Python,
Django, numpy, scipy and pyarrow loaded), plus BYTES_PER_VALUE for each value it reads. The
values are counted input by input: the window's and the reference's rows times the columns
read of each, and a label's id and outcome. A row's time is not counted (the window is cut by
it as it is read, then it is let go), nor the reference's ids (never read). A value is a float64
or a pointer to shared text, plus the working copies the checks make of the columns they
measure; text values are bounded at ingestion (INGEST_MAX_TEXT_LENGTH) and shared per distinct
value, so they do not grow the estimate by their length. Both constants come from the peaks
`bench/fanout.py` measures beside the estimate (docs/performance.md): an upper bound of each."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Sum

from monitoring.ingestion.domain import BatchKind
from monitoring.ingestion.models import Batch
from monitoring.registry.data_schema import DataSchema

BASE_MB = 512
BYTES_PER_VALUE = 24
MB = 2**20


class RunOverBudget(ValueError):
    """The run would need more memory than RUN_MEMORY_BUDGET_MB."""


@dataclass(frozen=True)
class RowsRead:
    """Rows of every batch a run would read, input by input (whole batches: an upper bound)."""

    window: int
    reference: int
    labels: int

    @property
    def total(self) -> int:
        return self.window + self.reference + self.labels


@dataclass(frozen=True)
class ColumnsRead:
    """What one process reads of each input: columns of the window and of the reference, and
    whether it reads the labels."""

    window: int
    reference: int
    labels: bool

    @classmethod
    def of(cls, schema: DataSchema, columns: list[str] | tuple[str, ...]) -> ColumnsRead:
        """What a process reading `columns` holds (monitoring.runs.services.run_windows reads no
        row's time, and no reference id)."""
        named = set(columns)
        return cls(
            window=len(named - {schema.timestamp}),
            reference=len(named - {schema.timestamp, schema.id}),
            labels=bool(schema.target) and schema.target in named,
        )


def run_rows_estimate(model: str, start: dt.datetime, end: dt.datetime, baseline: dt.timedelta | None) -> RowsRead:
    """Rows of every batch the run would read, input by input (whole batches: an upper bound)."""
    batches = Batch.objects.filter(model__name=model)
    window = batches.filter(kind=BatchKind.PREDICTIONS, time_max__gte=start, time_min__lt=end)
    if baseline is None:
        reference = batches.filter(kind=BatchKind.REFERENCE)
    else:
        reference = batches.filter(
            kind=BatchKind.PREDICTIONS, time_max__gte=start - baseline, time_min__lt=end - baseline
        )
    labels = batches.filter(kind=BatchKind.LABELS)
    window_rows, reference_rows, label_rows = (
        query.aggregate(rows=Sum("rows"))["rows"] or 0 for query in (window, reference, labels)
    )
    return RowsRead(window_rows, reference_rows, label_rows)


def megabytes_needed(rows: RowsRead, columns: ColumnsRead) -> float:
    """The estimate of what one process reading `columns` of `rows` holds at its peak, in MB."""
    values = rows.window * columns.window + rows.reference * columns.reference + rows.labels * 2 * columns.labels
    return BASE_MB + values * BYTES_PER_VALUE / MB


def features_per_part(rows: RowsRead, most: int) -> int:
    """The most features, up to `most`, that a part of a fanned-out run may measure within the
    budget (it reads their columns of the window and of the reference); at least one."""
    budget = settings.RUN_MEMORY_BUDGET_MB
    fitting = (size for size in range(most, 1, -1) if megabytes_needed(rows, ColumnsRead(size, size, False)) <= budget)
    return next(fitting, 1)


def run_budget_check(rows: RowsRead, columns: ColumnsRead, what: str = "the run") -> None:
    """RunOverBudget when the process that reads `columns` of `rows` (`what` it is) would hold
    more than RUN_MEMORY_BUDGET_MB."""
    budget = settings.RUN_MEMORY_BUDGET_MB
    needed = megabytes_needed(rows, columns)
    if needed > budget:
        labels = f" and {rows.labels:,} labels" if columns.labels else ""
        raise RunOverBudget(
            f"{what} would read {rows.window:,} rows of {columns.window} columns, {rows.reference:,} reference rows "
            f"of {columns.reference}{labels}: an estimated {needed:,.0f} MB, over the run memory budget of "
            f"{budget:,} MB (RUN_MEMORY_BUDGET_MB): run a shorter window or raise the budget"
        )


def memory_limit_apply(megabytes: int) -> None:
    """Limit this process's data (heap and anonymous memory) to `megabytes`: past it an
    allocation fails with MemoryError, which the run records as its failure, instead of the
    kernel killing whatever process it picks. Worker processes call this as they start."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    wanted = megabytes * MB
    resource.setrlimit(resource.RLIMIT_DATA, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))
