"""The read model of batches received, kept in step with the model-data streams."""

from __future__ import annotations

from audit import projections
from audit.blobs import blob_path
from audit.envelope import parse_time
from audit.store import RecordedEvent
from monitoring.ingestion.domain import BatchIngested
from monitoring.ingestion.models import Batch


def _batch_ingested(event: BatchIngested, recorded: RecordedEvent) -> None:
    Batch.objects.create(
        model_id=event.model,
        kind=event.kind,
        sha256=event.file_digest,
        rows=event.rows,
        path=blob_path(event.file_digest),
        schema_version=event.schema_version,
        time_min=parse_time(event.time_min) if event.time_min else None,
        time_max=parse_time(event.time_max) if event.time_max else None,
        ingested_at=recorded.occurred_at,
        seq=recorded.seq,
        event_id=recorded.event_id,
    )


BATCHES = projections.register(
    projections.Projection(name="monitoring.batches", handlers={BatchIngested: _batch_ingested}, models=[Batch])
)
