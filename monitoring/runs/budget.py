"""A run's memory budget: a window that would not fit is refused before it is loaded, with the
figures, instead of taking the worker (and whatever shares its machine) down.

The estimate is what one process holds at its peak: BASE_MB for the worker itself (Python,
Django, numpy, scipy and pyarrow loaded), plus BYTES_PER_VALUE for each value it reads. The
values are counted input by input: the window's and the reference's rows times the columns
read of each, a label's id and outcome, an earlier window's row time (where the policy compares
volumes), and a KPI row's four values. A row's time is not counted (the window is cut by
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

from monitoring.ingestion.models import Batch
from monitoring.registry.data_schema import KPI_COLUMNS, DataSchema

BASE_MB = 512
BYTES_PER_VALUE = 24
MB = 2**20


class RunOverBudget(ValueError):
    """The run would need more memory than RUN_MEMORY_BUDGET_MB."""


@dataclass(frozen=True)
class RowsRead:
    """Rows of every batch a run would read, input by input (whole batches: an upper bound):
    besides the window, the reference and the labels, the earlier windows whose rows it counts
    (their times only) and the KPI rows of the window and of its baseline period."""

    window: int
    reference: int
    labels: int
    history: int = 0
    kpis: int = 0

    @property
    def total(self) -> int:
        """The rows whose columns the run reads (what RUN_FANOUT_ROWS is compared with)."""
        return self.window + self.reference + self.labels


@dataclass(frozen=True)
class ColumnsRead:
    """What one process reads of each input: columns of the window and of the reference, and
    whether it reads the labels."""

    window: int
    reference: int
    labels: bool
    history_and_kpis: bool = False  # the process that computes the run reads them; a part does not

    @classmethod
    def of(cls, schema: DataSchema, columns: list[str] | tuple[str, ...]) -> ColumnsRead:
        """What the process computing the run from `columns` holds (monitoring.runs.services.
        run_windows reads no row's time, and no reference id)."""
        named = set(columns)
        return cls(
            window=len(named - {schema.timestamp}),
            reference=len(named - {schema.timestamp, schema.id}),
            labels=bool(schema.target) and schema.target in named,
            history_and_kpis=True,
        )


def batch_rows(model: str, kind: str, since: dt.datetime | None, until: dt.datetime | None) -> int:
    """Rows of the model's batches of `kind` that overlap [since, until) (every one when not
    bounded): whole batches, an upper bound of what a read of that span holds."""
    batches = Batch.objects.filter(model__name=model, kind=kind)
    if since is not None:
        batches = batches.filter(time_max__gte=since)
    if until is not None:
        batches = batches.filter(time_min__lt=until)
    return batches.aggregate(rows=Sum("rows"))["rows"] or 0


def megabytes_needed(rows: RowsRead, columns: ColumnsRead) -> float:
    """The estimate of what one process reading `columns` of `rows` holds at its peak, in MB."""
    values = rows.window * columns.window + rows.reference * columns.reference + rows.labels * 2 * columns.labels
    if columns.history_and_kpis:  # an earlier window's row: its time; a KPI row: time, name, value, count
        values += rows.history + rows.kpis * len(KPI_COLUMNS)
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
        rest = [f"{rows.labels:,} labels"] if columns.labels else []
        if columns.history_and_kpis:
            rest += [f"the times of {rows.history:,} earlier rows"] if rows.history else []
            rest += [f"{rows.kpis:,} KPI rows"] if rows.kpis else []
        others = "".join(f", {part}" for part in rest[:-1]) + (f" and {rest[-1]}" if rest else "")
        raise RunOverBudget(
            f"{what} would read {rows.window:,} rows of {columns.window} columns, {rows.reference:,} reference rows "
            f"of {columns.reference}{others}: an estimated {needed:,.0f} MB, over the run memory budget of "
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
