"""What ingestion records: one event per stored batch, on the stream ("model-data", model).

There is no aggregate to consult: a batch is checked against the model's schema (conform.py)
and the content-addressed file is the state; the event says what arrived and when.
"""

from __future__ import annotations

from audit.events import Choice, Closed, Context, Event, Timestamp, event_type

STREAM = "model-data"


class BatchKind(Closed):
    REFERENCE = "reference"
    PREDICTIONS = "predictions"
    LABELS = "labels"
    KPIS = "kpis"


@event_type("monitoring.BatchIngested")
class BatchIngested(Event):
    """A batch of reference rows, predictions, labels or KPIs, stored as a content-addressed
    Parquet file (blobs/<file_digest>): its row count, time range and the data schema version it
    was checked against. Evidence bundles with data carry the file."""

    model: str
    kind: Choice[BatchKind]
    file_digest: str
    rows: int
    schema_version: int
    time_min: Timestamp | None = None
    time_max: Timestamp | None = None
    model_versions: list[str] | None = None

    def describe(self, about: Context) -> str:
        span = f" from {self.time_min} to {self.time_max}" if self.time_min else ""
        return f"{about.who} reported {self.rows:,} rows of {self.kind.value} for {self.model}{span}"
