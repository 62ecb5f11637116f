"""Old partitions of the log archived to object storage as verifiable segments (audit.segment).

A partition can be archived once every one of its seqs is sealed and covered by a signed
checkpoint. Its events are written out as a segment, stored content-addressed next to the data
files (blobs/<sha256>, on disk or in any S3-compatible store), read back from there and checked as
any verifier checks a segment, and only then recorded by an audit.SegmentArchived event, whose
projection is audit_log_segment. The segment's subtree hashes stay in the stored Merkle tree and
its paths lead to the checkpoint's signed root, so the segment verifies without the database.

The partition stays in the database: reads of archived events from their segments, which
dropping the partition needs first, are not built yet (docs/event-store.md).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson
from botocore.exceptions import ClientError
from django.core.files.storage import default_storage
from django.db import connection, transaction

from audit import checkpoints, projections
from audit.blobs import (
    blob_delete,
    blob_exists,
    blob_path,
    blob_store,
    blob_store_file,
    storage_reached,
    stored_open,
)
from audit.canonical import canonicalize
from audit.checkpoints import CheckpointError
from audit.envelope import GENESIS_PREV_HASH, KEY_ROTATED
from audit.events import SegmentArchived
from audit.evidence import keys_as_of
from audit.models import Checkpoint, Event, LogInfo, LogPartition, LogSegment
from audit.segment import SegmentInvalid, SegmentWriter, event_line, segment_manifest, segment_verify
from audit.selectors import signing_keys
from audit.store import Actor, NewEvent, RecordedEvent, append
from audit.verification import KeySchedule

SEGMENT_STREAM = "log-segment"
ARCHIVE_LOCK_KEY = 0x61726368  # "arch"
READ_EVENTS = 5000  # a query's worth: some 8 MB of events


class ArchiveError(RuntimeError):
    """The partition cannot be archived (yet), or its segment did not verify: nothing was recorded."""


@dataclass(frozen=True)
class PartitionState:
    name: str
    first_seq: int
    last_seq: int
    segment: LogSegment | None
    blocker: str | None  # why it cannot be archived now; None when it can (or is archived)


def partition_states() -> list[PartitionState]:
    """Every partition of the log, oldest first, with its segment or what keeps it from one."""
    latest = Checkpoint.objects.order_by("-tree_size").values_list("tree_size", flat=True).first() or 0
    head = Event.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    segments = {s.first_seq: s for s in LogSegment.objects.all()}
    states = []
    for partition in LogPartition.objects.order_by("first_seq"):
        last = partition.end_seq - 1
        segment = segments.get(partition.first_seq)
        blocker = None
        if segment is None and partition.first_seq > head:
            blocker = "it is made ahead of the log and holds no event yet"
        elif segment is None and last > head:
            blocker = f"it holds the head of the log (seq {head:,}) and is still being written"
        elif segment is None and last > latest:
            blocker = (
                f"its last seq {last:,} is past the latest checkpoint ({latest:,} events); "
                "beat signs one every minute, or run audit_checkpoint"
            )
        states.append(PartitionState(partition.name, partition.first_seq, last, segment, blocker))
    return states


def partition_archive(name: str, *, actor: Actor, reason: str | None = None) -> LogSegment:
    """Archive the partition `name` as a segment tied to the latest checkpoint; see the module.
    One archiver at a time (a second is refused); on any failure, nothing is recorded and what
    this call stored is taken back."""
    with _archiver():
        state = _archivable(name)
        checkpoint = Checkpoint.objects.order_by("-tree_size").first()
        assert checkpoint is not None  # a partition is past no checkpoint only when there is one
        manifest, created = _store_segment(state, checkpoint)
        try:
            _verify_stored(manifest, KeySchedule(signing_keys()), created=created)
            manifest_sha256, manifest_created = blob_store(canonicalize(manifest))
        except (ArchiveError, OSError) as exc:
            if created:
                blob_delete(manifest["file_sha256"])
            if isinstance(exc, ArchiveError):
                raise
            raise ArchiveError(f"the manifest of {name} could not be stored, so nothing was recorded: {exc}") from exc
        event = SegmentArchived(
            partition=name,
            first_seq=state.first_seq,
            last_seq=state.last_seq,
            file_sha256=manifest["file_sha256"],
            file_bytes=manifest["file_bytes"],
            manifest_sha256=manifest_sha256,
            tree_size=checkpoint.tree_size,
        )
        stream = (SEGMENT_STREAM, str(state.first_seq))
        try:
            with transaction.atomic():
                append([NewEvent(*stream, event, actor, reason=reason)], expected={stream: 0})
        except Exception:
            for digest, ours in ((manifest["file_sha256"], created), (manifest_sha256, manifest_created)):
                if ours:
                    blob_delete(digest)
            raise
    return LogSegment.objects.get(first_seq=state.first_seq)


@contextmanager
def _archiver() -> Iterator[None]:
    """A session lock held while archiving: a second archiver is refused, not queued."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ARCHIVE_LOCK_KEY])
        if not cursor.fetchone()[0]:
            raise ArchiveError("another audit_archive is archiving now; try again when it has finished")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ARCHIVE_LOCK_KEY])


def _archivable(name: str) -> PartitionState:
    state = next((s for s in partition_states() if s.name == name), None)
    if state is None:
        raise ArchiveError(f"the log has no partition {name!r}")
    if state.segment is not None:
        raise ArchiveError(f"{name} is archived already: segment {state.segment.file_sha256}")
    if state.blocker is not None:
        raise ArchiveError(f"{name} cannot be archived yet: {state.blocker}")
    return state


def _store_segment(state: PartitionState, checkpoint: Checkpoint) -> tuple[dict, bool]:
    """Write the segment to a temporary file and store it; (its manifest, whether this call stored it)."""
    with tempfile.TemporaryFile() as data:
        manifest = _write(data, state.first_seq, state.last_seq, checkpoint)
        try:
            data.seek(0)
            return manifest, blob_store_file(data, manifest["file_sha256"])
        except OSError as exc:
            raise ArchiveError(
                f"the segment of {state.name} could not be stored, so nothing was recorded: {exc}"
            ) from exc


@dataclass(frozen=True)
class SegmentCheck:
    segment: LogSegment
    events: int
    problem: str | None


def segments_verify(first_seqs: list[int] | None = None) -> list[SegmentCheck]:
    """Read every archived segment (or those starting at `first_seqs`) back from storage and
    verify it against its manifest, its checkpoint and the log's keys."""
    keys = KeySchedule(signing_keys())
    segments = LogSegment.objects.order_by("first_seq")
    if first_seqs is not None:
        segments = segments.filter(first_seq__in=first_seqs)
    checks = []
    for segment in segments:
        try:
            manifest = segment_manifest_read(segment)
            _check_stored_size(segment)
            with stored_open(blob_path(segment.file_sha256)) as data:
                checks.append(SegmentCheck(segment, segment_verify(data, manifest, keys=keys), None))
        except (SegmentInvalid, ArchiveError, OSError, ClientError) as exc:
            checks.append(SegmentCheck(segment, 0, str(exc)))
    return checks


def _check_stored_size(segment: LogSegment) -> None:
    """A file missing, or of another size than archived, is named as such before it is read."""
    name = blob_path(segment.file_sha256)
    with storage_reached():
        if not default_storage.exists(name):
            raise ArchiveError(f"the segment file {name} is missing from storage (audit_archive --restore remakes it)")
        size = default_storage.size(name)
    if size != segment.file_bytes:
        raise ArchiveError(
            f"the segment file {name} holds {size:,} bytes, not the {segment.file_bytes:,} archived: it was replaced"
        )


def segment_restore(segment: LogSegment) -> bool:
    """Remake a segment lost from storage (or damaged there) from its partition, which is still in
    the database: the writer is deterministic, so the same events and checkpoint give the same
    bytes, and only those bytes, with the digests the audit.SegmentArchived event recorded, are
    stored again. True: the file was stored again; False: the stored one had the archived SHA-256
    and was kept (both then verified where they are kept)."""
    checkpoint = Checkpoint.objects.filter(tree_size=segment.tree_size).first()
    if checkpoint is None:
        raise ArchiveError(f"the checkpoint of {segment.tree_size:,} events the segment is tied to is missing")
    with _archiver(), tempfile.TemporaryFile() as data:
        manifest = _write(data, segment.first_seq, segment.last_seq, checkpoint)
        manifest_bytes = canonicalize(manifest)
        if (manifest["file_sha256"], hashlib.sha256(manifest_bytes).hexdigest()) != (
            segment.file_sha256,
            segment.manifest_sha256,
        ):
            raise ArchiveError(
                f"the partition no longer gives the archived bytes of the segment from seq {segment.first_seq}: "
                "run audit_verify (or this zlib compresses otherwise than the one that archived it)"
            )
        name = blob_path(segment.file_sha256)
        created = False
        with storage_reached():
            held = default_storage.exists(name)
            if held and _stored_sha256(name) != segment.file_sha256:
                default_storage.delete(name)  # damaged: the name is the digest of the right bytes
                held = False
        if not held:  # a sound stored copy is kept: deleting it first would risk the only one
            data.seek(0)
            created = blob_store_file(data, segment.file_sha256)
    _verify_stored(manifest, KeySchedule(signing_keys()), created=created, sound=held)
    manifest_name = blob_path(segment.manifest_sha256)
    with storage_reached():
        if default_storage.exists(manifest_name):
            with default_storage.open(manifest_name, "rb") as stored:
                if hashlib.sha256(stored.read()).hexdigest() != segment.manifest_sha256:
                    default_storage.delete(manifest_name)
    blob_store(manifest_bytes)
    return not held


def _stored_sha256(name: str) -> str:
    digest = hashlib.sha256()
    with default_storage.open(name, "rb") as stored:
        for block in iter(lambda: stored.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def segment_manifest_read(segment: LogSegment) -> dict:
    """The segment's manifest from storage, checked against the digest its event recorded."""
    if not blob_exists(segment.manifest_sha256):
        raise ArchiveError(
            f"the manifest {segment.manifest_sha256} of the segment from seq {segment.first_seq} is missing "
            f"(audit_archive --restore {segment.first_seq} remakes it)"
        )
    with stored_open(blob_path(segment.manifest_sha256)) as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != segment.manifest_sha256:
        raise ArchiveError(
            f"the manifest of the segment from seq {segment.first_seq} is not the one archived "
            f"(audit_archive --restore {segment.first_seq} remakes it)"
        )
    manifest = orjson.loads(data)
    if (manifest.get("first_seq"), manifest.get("last_seq"), manifest.get("file_sha256")) != (
        segment.first_seq,
        segment.last_seq,
        segment.file_sha256,
    ):
        raise ArchiveError(f"the manifest of the segment from seq {segment.first_seq} names another range or file")
    return manifest


def _write(data: IO[bytes], first: int, last: int, checkpoint: Checkpoint) -> dict:
    """Stream events first−1 (the link, when first > 1) to last into the segment file, a short
    query at a time (sealed events never change, so no snapshot need be held for the whole)."""
    prev_hash = GENESIS_PREV_HASH
    if first > 1:
        link = Event.objects.filter(seq=first - 1).values_list("hash", flat=True).first()
        if link is None:
            raise ArchiveError(f"event {first - 1}, before the partition, is missing: run audit_verify")
        prev_hash = bytes(link).hex()
    writer = SegmentWriter(data, first, last, prev_hash)
    try:
        for start in range(first, last + 1, READ_EVENTS):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT seq, canonical, hash, signature FROM audit_event WHERE seq BETWEEN %s AND %s ORDER BY seq",
                    [start, min(start + READ_EVENTS - 1, last)],
                )
                for seq, canonical, digest, signature in cursor.fetchall():
                    writer.add(seq, bytes(canonical), bytes(digest), bytes(signature))
        written = writer.finish()
    except ValueError as exc:
        raise ArchiveError(f"the partition's events are not whole: {exc}; run audit_verify") from exc
    try:
        paths = [checkpoints.subtree_path(lv, position, checkpoint.tree_size) for lv, position, _ in written.subtrees]
    except CheckpointError as exc:
        raise ArchiveError(f"the stored Merkle tree lacks the segment's path: {exc}; run audit_verify") from exc
    log_id = str(LogInfo.objects.values_list("log_id", flat=True).get())
    return segment_manifest(log_id=log_id, written=written, checkpoint=checkpoint.as_dict(), paths=paths)


def _verify_stored(manifest: dict, keys: KeySchedule, *, created: bool, sound: bool = False) -> None:
    """The copy in storage, read back, must verify as any verifier checks a segment: what the
    store holds is what counts. The caller takes back a copy it stored. `sound`: the stored copy
    was found to have the archived SHA-256, so a failure is not its damage."""
    digest = manifest["file_sha256"]
    try:
        with stored_open(blob_path(digest)) as data:
            segment_verify(data, manifest, keys=keys)
    except (SegmentInvalid, OSError, ClientError) as exc:
        found = (
            ""
            if created
            else " (the stored copy has the archived SHA-256: keep it)"
            if sound
            else f" (a file of that name was in storage before: remove blobs/{digest} if it is damaged)"
        )
        raise ArchiveError(
            f"the stored segment {digest} does not verify, so nothing was recorded: {exc}{found}"
        ) from exc


def segment_copy_out(segment: LogSegment, out: Path) -> None:
    """Write the segment, its manifest, keys.json and the log's key rotations up to its checkpoint
    (each with its inclusion proof there) into the new or empty directory `out`: what
    `python -m audit.verifier --segment` checks. Nothing is left in `out` on a failure."""
    manifest = segment_manifest_read(segment)
    size = manifest["checkpoint"]["tree_size"]
    made = not out.exists()
    try:
        with stored_open(blob_path(segment.file_sha256)) as data:
            out.mkdir(parents=True, exist_ok=True)
            with (out / "events.jsonl.gz").open("wb") as copy:
                digest, size_copied = _copied(data, copy)
        if (digest, size_copied) != (segment.file_sha256, segment.file_bytes):
            raise SegmentDamaged(
                f"the stored segment from seq {segment.first_seq} is not the one archived ({size_copied} bytes, "
                f"SHA-256 {digest}; archived: {segment.file_bytes} bytes, {segment.file_sha256}): "
                f"remake it with --restore {segment.first_seq}"
            )
        (out / "manifest.json").write_bytes(canonicalize(manifest))
        (out / "keys.json").write_bytes(canonicalize(keys_as_of(size)))
        rotations = Event.objects.filter(event_type=KEY_ROTATED, seq__lte=size).order_by("seq")
        with (out / "rotations.jsonl").open("wb") as lines, (out / "rotation_proofs.jsonl").open("wb") as proofs:
            for row in rotations:
                lines.write(event_line(bytes(row.canonical), bytes(row.hash), bytes(row.signature)))
                path = [step.hex() for step in checkpoints.inclusion_proof(row.seq, size)]
                proofs.write(canonicalize({"leaf_index": row.seq - 1, "path": path, "seq": row.seq, "tree_size": size}))
                proofs.write(b"\n")
    except Exception as exc:
        for name in ("events.jsonl.gz", "manifest.json", "keys.json", "rotations.jsonl", "rotation_proofs.jsonl"):
            (out / name).unlink(missing_ok=True)
        if made and out.exists():
            out.rmdir()
        if isinstance(exc, SegmentDamaged):
            raise ArchiveError(str(exc)) from None
        if isinstance(exc, OSError | ClientError | CheckpointError):
            raise ArchiveError(f"the segment from seq {segment.first_seq} could not be copied out: {exc}") from exc
        raise


class SegmentDamaged(Exception):
    """The stored file is not the segment the log recorded."""


def _copied(source: IO[bytes], target: IO[bytes]) -> tuple[str, int]:
    """Copy `source` to `target`: the SHA-256 and the size of what was copied."""
    digest, size = hashlib.sha256(), 0
    for block in iter(lambda: source.read(1 << 20), b""):
        digest.update(block)
        target.write(block)
        size += len(block)
    return digest.hexdigest(), size


def _archived(event: SegmentArchived, recorded: RecordedEvent) -> None:
    LogSegment.objects.create(
        first_seq=event.first_seq,
        last_seq=event.last_seq,
        partition=event.partition,
        file_sha256=event.file_sha256,
        file_bytes=event.file_bytes,
        manifest_sha256=event.manifest_sha256,
        tree_size=event.tree_size,
        archived_seq=recorded.seq,
        archived_at=recorded.occurred_at,
    )


SEGMENTS = projections.register(
    projections.Projection(name="audit.segments", handlers={SegmentArchived: _archived}, models=[LogSegment])
)
