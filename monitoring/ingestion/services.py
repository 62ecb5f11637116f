"""Ingestion: a batch is read, checked against the model's schema, stored as a Parquet file,
and recorded as one `monitoring.BatchIngested` event: all of it, or nothing (the file is
content-addressed, so a failed append leaves at most an unreferenced file, never a half batch)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import connection, transaction

from audit.blobs import BlobCorrupt, blob_delete, blob_exists, blob_read
from audit.envelope import format_time, read_time
from audit.errors import InvalidCommand
from audit.store import Actor, NewEvent, append
from monitoring.ingestion.conform import BatchRejected, Problem, conform, text_columns
from monitoring.ingestion.domain import STREAM, BatchIngested, BatchKind
from monitoring.ingestion.files import batch_file_bytes, batch_file_read, batch_file_write
from monitoring.ingestion.limits import Limits
from monitoring.ingestion.models import Batch
from monitoring.ingestion.parsing import parse_body
from monitoring.registry.data_schema import DataSchema, parse_schema
from monitoring.registry.domain import ModelNotFound
from monitoring.registry.models import ModelVersion, RegisteredModel
from monitoring.remediation.kinds import ApprovalRequired, RemediationKind

PARQUET = "application/vnd.apache.parquet"


@dataclass(frozen=True)
class Ingested:
    seq: int
    event_id: str | None  # the BatchIngested event, to cite (None for batches read before it was kept)
    kind: str
    sha256: str
    rows: int
    time_min: str | None
    time_max: str | None
    duplicate: bool  # the same content was ingested before: nothing new was stored

    def as_dict(self) -> dict:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "kind": self.kind,
            "sha256": self.sha256,
            "rows": self.rows,
            "time_min": self.time_min,
            "time_max": self.time_max,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True)
class Adoption:
    """An approved `reference_change` adding the staged batch `digest`."""

    request_id: str
    digest: str


def batch_ingest(
    *, model: str, kind: str, body: bytes, content_type: str, actor: Actor, adoption: Adoption | None = None
) -> Ingested:
    """Check, store and record one batch. A reference batch once a run has completed is staged:
    stored, not recorded, and ApprovalRequired names the `reference_change` request that adds
    it; that request, approved, ingests it again with its `adoption`."""
    registered = _active_model(model)
    table, schema = _conformed(registered, kind, body, content_type)
    if adoption is not None:
        _reads_as_staged(table, schema, adoption.digest, model)
    digest, created = batch_file_write(table, unique=[schema.id])
    if kind == BatchKind.REFERENCE and adoption is None and _reference_settled(registered, digest):
        raise ApprovalRequired(
            RemediationKind.REFERENCE_CHANGE,
            {"batch": digest},
            f"{model} has completed runs: its reference is what every run compares against, so this batch of "
            f"{table.num_rows:,} rows is staged as {digest} and joins the reference only once approved",
        )
    try:
        reason = None if adoption is None else f"approved remediation {adoption.request_id}"
        return _record(registered, kind, table, digest, schema, actor, reason=reason)
    except BaseException:
        # The event did not commit: take back the file this request stored, unless another
        # batch's committed event references the same content meanwhile.
        if created and not Batch.objects.filter(sha256=digest).exists():
            blob_delete(digest)
        raise


def ingest_limits(schema: DataSchema) -> Limits:
    """The configured limits; the model's data schema may set its own earliest plausible time."""
    return Limits(
        max_body_bytes=settings.INGEST_MAX_BODY_BYTES,
        max_rows=settings.INGEST_MAX_ROWS,
        max_columns=settings.INGEST_MAX_COLUMNS,
        max_text_length=settings.INGEST_MAX_TEXT_LENGTH,
        max_categories=settings.INGEST_MAX_CATEGORIES,
        earliest=schema.earliest or read_time(settings.INGEST_EARLIEST_TIME),
        clock_skew=dt.timedelta(seconds=settings.INGEST_CLOCK_SKEW_SECONDS),
    )


def _conformed(registered: RegisteredModel, kind: str, body: bytes, content_type: str) -> tuple[pa.Table, DataSchema]:
    """The batch read and checked against the model's schema (BatchRejected names every problem)."""
    schema = parse_schema(registered.data_schema)
    versions = set(ModelVersion.objects.filter(model=registered).values_list("version", flat=True))
    limits = ingest_limits(schema)
    table = conform(
        parse_body(body, content_type, text_columns=text_columns(kind, schema, registered.task), limits=limits),
        kind=kind,
        schema=schema,
        task=registered.task,
        versions=versions,
        now=dt.datetime.now(dt.UTC),
        limits=limits,
    )
    if kind == BatchKind.LABELS:
        _check_label_ids(registered, table.column(schema.id))
    return table, schema


def reference_check(*, model: str, digest: str) -> None:
    """A `reference_change` request's batch: staged, not in the reference, and read under the
    model's schema now as the batch it was (else InvalidCommand or BatchRejected), so that what
    is approved is what joins the reference."""
    body, content_type = staged_reference(model=model, digest=digest)
    registered = _active_model(model)
    table, schema = _conformed(registered, BatchKind.REFERENCE, body, content_type)
    _reads_as_staged(table, schema, digest, model)


def _reads_as_staged(table: pa.Table, schema: DataSchema, digest: str, model: str) -> None:
    now = hashlib.sha256(batch_file_bytes(table, unique=[schema.id])).hexdigest()
    if now != digest:
        raise InvalidCommand(
            f"the staged batch {digest} no longer reads as it did under {model}'s schema "
            f"(it reads as {now} now): send it again to stage it, and file a new request"
        )


def staged_reference(*, model: str, digest: str) -> tuple[bytes, str]:
    """The body of a staged reference batch, to ingest again once approved; InvalidCommand when
    no batch file has that digest or it is in the model's reference already."""
    if not re.fullmatch(r"[0-9a-f]{64}", digest) or not blob_exists(digest):
        raise InvalidCommand(f"reference_change: batch names no staged batch: {digest!r}")
    if Batch.objects.filter(model__name=model, kind=BatchKind.REFERENCE, sha256=digest).exists():
        raise InvalidCommand(f"reference_change: batch {digest} is in {model}'s reference already")
    try:
        return blob_read(digest), PARQUET
    except BlobCorrupt as exc:  # what joins the reference is what the approvers signed, or nothing
        raise InvalidCommand(f"reference_change: the staged batch {digest} was changed in storage: {exc}") from exc


def _reference_settled(registered: RegisteredModel, digest: str) -> bool:
    """Whether a reference batch of this content would change the model's reference once a run
    has compared against it: from then on its reference changes what alerts. (Until then a
    reference may come in several batches, and the first one ends the runs that failed for want
    of it; a batch sent again is the one it holds.)"""
    from monitoring.runs.domain import RunStatus
    from monitoring.runs.models import Run

    references = Batch.objects.filter(model=registered, kind=BatchKind.REFERENCE)
    if not references.exists() or references.filter(sha256=digest).exists():
        return False
    return Run.objects.filter(model_name=registered.name, status=RunStatus.COMPLETED).exists()


def _record(
    registered, kind: str, table: pa.Table, digest: str, schema: DataSchema, actor: Actor, *, reason: str | None = None
) -> Ingested:
    model = registered.name
    time_column = "timestamp" if kind == BatchKind.KPIS else schema.timestamp
    time_min, time_max = _time_range(table, time_column)
    with transaction.atomic():
        _hold_content(model, kind, digest)
        earlier = Batch.objects.filter(model=registered, kind=kind, sha256=digest).first()
        if earlier is not None:
            return _ingested(earlier, duplicate=True)
        return _append_batch(registered, kind, table, digest, time_min, time_max, actor, reason)


def _hold_content(model: str, kind: str, digest: str) -> None:
    """Until this transaction ends, the same content sent at once for the same model and kind
    waits here, then finds the batch this one recorded: without it, each of them found none and
    appended its own event. Other batches of the model do not wait (the lock is the content's)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 11))", [f"batch\n{model}\n{kind}\n{digest}"])


def _append_batch(
    registered: RegisteredModel,
    kind: str,
    table: pa.Table,
    digest: str,
    time_min: str | None,
    time_max: str | None,
    actor: Actor,
    reason: str | None,
) -> Ingested:
    model = registered.name
    versions_seen = None
    if "model_version" in table.column_names:
        versions_seen = sorted(v for v in pc.unique(table.column("model_version")).to_pylist() if v)
    ingested = BatchIngested(
        model=model,
        kind=BatchKind(kind),
        file_digest=digest,
        rows=table.num_rows,
        schema_version=registered.schema_version,
        time_min=time_min,
        time_max=time_max,
        model_versions=versions_seen,
    )
    # A model's data stream only grows: batches append whatever its version. The append is sealed
    # in the caller's transaction (the content's lock is held until it commits); the batch row is
    # its projection.
    recorded = append([NewEvent(STREAM, model, ingested, actor, reason=reason)], expected={(STREAM, model): None})[0]
    if kind == BatchKind.LABELS:
        transaction.on_commit(lambda: _evaluate_labels_later(model), robust=True)  # the batch is in
    return Ingested(recorded.seq, recorded.event_id, kind, digest, table.num_rows, time_min, time_max, duplicate=False)


def _evaluate_labels_later(model: str) -> None:
    from monitoring.runs.tasks import evaluate_delayed_labels

    evaluate_delayed_labels.delay(model)


def _active_model(name: str) -> RegisteredModel:
    registered = RegisteredModel.objects.filter(name=name).first()
    if registered is None:
        raise ModelNotFound(f"no model named {name!r}")
    if registered.retired:
        raise InvalidCommand(f"model {name!r} is retired and accepts no data")
    return registered


def _check_label_ids(registered: RegisteredModel, ids: pa.ChunkedArray) -> None:
    """Every label must answer a prediction the model reported.

    The prediction batches are read newest first, one at a time, until every id is found: labels
    mostly answer recent predictions, so a check reads a few batches, not the model's history
    (which it used to read whole, every id of it held at once, on every labels request)."""
    id_column = parse_schema(registered.data_schema).id
    unanswered = pc.unique(ids.combine_chunks())
    batches = Batch.objects.filter(model=registered, kind=BatchKind.PREDICTIONS).order_by("-seq")
    for path in batches.values_list("path", flat=True).iterator():
        for chunk in _ids_held(path, id_column):
            unanswered = pc.filter(unanswered, pc.invert(pc.is_in(unanswered, value_set=chunk)))
        if len(unanswered) == 0:
            return
    flags = pc.is_in(ids, value_set=unanswered).to_numpy(zero_copy_only=False)
    rows = [int(i) for i in flags.nonzero()[0]]
    if rows:
        examples = ", ".join(repr(ids[i].as_py()) for i in rows[:5])
        reason = f"label for an unknown prediction id (e.g. {examples})"
        raise BatchRejected([Problem(id_column, reason, rows[:20], len(rows))])


def _ids_held(path: str, id_column: str) -> list[pa.Array]:
    """The ids a prediction batch holds; none when it was stored before an approved schema change
    named another id column (its ids are under the old name, as every reader takes them)."""
    table = batch_file_read(path, [id_column])
    return table.column(id_column).chunks if id_column in table.column_names else []


def _time_range(table: pa.Table, column: str) -> tuple[str | None, str | None]:
    if column not in table.column_names or table.column(column).null_count == table.num_rows:
        return None, None
    low, high = pc.min_max(table.column(column)).values()
    return format_time(low.as_py()), format_time(high.as_py())


def _ingested(batch: Batch, *, duplicate: bool) -> Ingested:
    low = format_time(batch.time_min) if batch.time_min else None
    high = format_time(batch.time_max) if batch.time_max else None
    event_id = str(batch.event_id) if batch.event_id else None
    return Ingested(batch.seq, event_id, batch.kind, batch.sha256, batch.rows, low, high, duplicate)
