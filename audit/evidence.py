"""Evidence bundles: a zip an auditor verifies offline (docs/evidence-format.md, "Bundle").

The export checkpoints the log first, then writes the selected events with their signatures and
RFC 9162 inclusion proofs against that checkpoint, the keys, earlier checkpoints with
consistency proofs, optionally the data files the events reference, a human-readable report,
and a manifest signed by the log's key. The file appears only when complete.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import gc
import hashlib
import logging
import os
import queue
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
from django.core.files.storage import default_storage
from django.db import connection, transaction

from audit import checkpoints, cosigning, keyring, merkle
from audit.blobs import blob_exists, blob_path, storage_reached
from audit.canonical import canonicalize
from audit.envelope import BUNDLE_FORMAT, KEY_ROTATED, format_time, parse_time
from audit.events import EvidenceExported
from audit.keys import SigningKey
from audit.models import Checkpoint
from audit.report import Timeline, render_report
from audit.segment import event_line
from audit.selectors import signing_keys
from audit.store import Actor, NewEvent, append

Progress = Callable[[int, int], None]
logger = logging.getLogger(__name__)


class EvidenceError(ValueError):
    pass


# Named scopes a domain registers (monitoring registers "model"): SQL selecting the seed streams
# of the scope as (stream_type, stream_id) rows, given %(value)s and %(size)s. The export takes
# those streams and every event linked to them by causation, both ways.
@dataclass(frozen=True)
class Scope:
    name: str
    streams_sql: str
    help: str


_scopes: dict[str, Scope] = {}


def scope_register(name: str, streams_sql: str, *, help: str) -> None:
    if name in _scopes or name in ("since", "until", "streams", "include_data"):
        raise RuntimeError(f"evidence scope {name!r} is already registered")
    _scopes[name] = Scope(name, streams_sql, help)


def scopes() -> list[Scope]:
    return sorted(_scopes.values(), key=lambda scope: scope.name)


def scope_names() -> list[str]:
    return sorted(_scopes)


def parse_stream(text: str) -> tuple[str, str]:
    kind, sep, ident = str(text).partition(":")
    if not sep or not kind or not ident:
        raise EvidenceError(f"stream {text!r} must be TYPE:ID")
    return kind, ident


@dataclass(frozen=True)
class EvidenceQuery:
    scopes: tuple[tuple[str, str], ...] = ()  # (scope name, value), e.g. ("model", "credit-default")
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    streams: tuple[tuple[str, str], ...] = ()
    include_data: bool = False

    def as_manifest(self) -> dict:
        given = dict(self.scopes)
        return {
            **{name: given.get(name) for name in scope_names()},
            "since": format_time(self.since) if self.since else None,
            "until": format_time(self.until) if self.until else None,
            "streams": [f"{kind}:{ident}" for kind, ident in self.streams],
            "include_data": self.include_data,
        }


def query_from_dict(data: dict) -> EvidenceQuery:
    """The inverse of EvidenceQuery.as_manifest (API requests, queued exports, the command)."""
    streams = [parse_stream(item) for item in data.get("streams") or []]
    return EvidenceQuery(
        scopes=tuple((name, str(data[name])) for name in scope_names() if data.get(name)),
        since=parse_time(data["since"]) if data.get("since") else None,
        until=parse_time(data["until"]) if data.get("until") else None,
        streams=tuple(streams),
        include_data=bool(data.get("include_data")),
    )


@dataclass
class ExportSummary:
    path: Path
    events: int
    tree_size: int
    data_files: int
    missing_data: list[str] = field(default_factory=list)
    sha256: str = ""
    export_id: str = ""

    def as_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def evidence_export(
    *,
    query: EvidenceQuery,
    out: Path,
    created_by: Actor,
    export_id: str | None = None,
    progress: Progress | None = None,
    deliver: Callable[[Path], None] | None = None,
    overwrite: bool = True,
) -> ExportSummary:
    """Write the bundle for `query` to `out` (atomically: a temporary file renamed at the end),
    hand it to `deliver` (the export task puts it in storage), then record
    `audit.EvidenceExported` with the bundle's SHA-256: who took which evidence. When `deliver`
    raises, nothing is recorded and `out` is removed: the log never names a bundle that was not
    delivered, and no undelivered bundle is left behind. Without `overwrite`, a file at `out`
    (there before, or made meanwhile) is never replaced: EvidenceError, nothing recorded."""
    query_problem(query)  # before any work: a query or exporter the log could not record
    if not (created_by.id and created_by.name):
        raise EvidenceError("who exports must have a non-empty id and name: the log records them")
    if out.is_dir():
        raise EvidenceError(f"{out} is a folder: name the zip file to write")
    checkpoint = checkpoints.checkpoint_create()
    if checkpoint is None:
        raise EvidenceError("the log is empty: there is nothing to export")
    signer = _checkpoint_signer(checkpoint)  # held: a key rotated while the bundle is written is not its
    try:  # the witnesses that have not cosigned it yet; a bundle carries what they gave
        cosigning.cosign(checkpoint)
    except Exception:
        logger.exception("asking the witnesses to cosign tree size %s failed", checkpoint.tree_size)
    temporary = None
    try:
        # The selection is a temporary table of this transaction, which the events and the
        # proofs read in order, a slice at a time: memory does not grow with the events.
        with transaction.atomic():
            selected = _select(query, checkpoint.tree_size)
            if not selected:
                raise EvidenceError("no event matches the query")
            out.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(prefix=".evidence-", suffix=".zip", dir=out.parent)
            os.close(descriptor)
            with _cyclic_gc_paused():
                summary = _write_bundle(Path(temporary), query, checkpoint, signer, selected, created_by.name, progress)
        _put_in_place(Path(temporary), out, overwrite=overwrite)
    finally:
        if temporary and os.path.exists(temporary):
            os.unlink(temporary)
    summary.path = out
    summary.sha256 = _file_sha256(out)
    summary.export_id = export_id or str(uuid.uuid4())
    if deliver is not None:
        try:
            deliver(out)
        except BaseException:
            out.unlink(missing_ok=True)  # not delivered, so never recorded: nothing is left behind
            raise
    _recorded(summary, query, created_by)
    return summary


def _put_in_place(temporary: Path, out: Path, *, overwrite: bool) -> None:
    """The finished bundle takes its name. A link, unlike a rename, fails when the name is taken:
    a bundle written at the same name meanwhile (another export) is not replaced."""
    if overwrite:
        os.replace(temporary, out)
        return
    try:
        os.link(temporary, out, follow_symlinks=False)
    except FileExistsError:
        raise EvidenceError(f"{out} exists: an evidence bundle is never overwritten; name a new file") from None


def _checkpoint_signer(checkpoint: Checkpoint) -> SigningKey:
    """The key that signed the checkpoint, which signs the manifest: the log's current key, not a
    retired one this process may still hold."""
    key = keyring.current_signing_key()
    if key.key_id != checkpoint.key_id:
        key = keyring.current_signing_key(reload=True)
    if key.key_id != checkpoint.key_id:
        raise EvidenceError(
            f"the signing key was rotated as the export began (the checkpoint's is {checkpoint.key_id}, "
            f"the configured one {key.key_id}): export again"
        )
    return key


def _recorded(summary: ExportSummary, query: EvidenceQuery, created_by: Actor) -> None:
    exported = EvidenceExported(
        export_id=summary.export_id,
        query=query.as_manifest(),
        tree_size=summary.tree_size,
        events=summary.events,
        bundle_sha256=summary.sha256,
    )
    append(
        [NewEvent("evidence", summary.export_id, exported, created_by)], expected={("evidence", summary.export_id): 0}
    )


def query_problem(query: EvidenceQuery) -> None:
    """Raise EvidenceError when the query cannot be exported or recorded as it is."""
    if query.since and query.until and query.since > query.until:
        raise EvidenceError("--since must not be after --until")
    try:
        query.as_manifest()
    except (OverflowError, ValueError) as exc:  # a time at the edge of the calendar, past it in UTC
        raise EvidenceError(f"--since and --until must be times between the years 1 and 9999 in UTC ({exc})") from None


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """The report holds every listed event (and its parsed payload) until it is written: with
    each new allocation the cyclic collector walks them all again, which tripled the time of a
    100,000-event report. Reference counting still frees what the export drops; the collector
    (process-wide: other threads' too) runs again once the bundle is written, or has failed."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- selection -----------------------------------------------------------------------------

_LINKED_SQL = """
WITH RECURSIVE
streams AS ({streams}),
linked (seq, event_id, causation_id) AS (
    SELECT e.seq, e.event_id, e.causation_id FROM audit_event e
      JOIN streams s ON e.stream_type = s.stream_type AND e.stream_id = s.stream_id
     WHERE e.seq <= %(size)s
    UNION
    SELECT e.seq, e.event_id, e.causation_id FROM audit_event e
      JOIN linked l ON e.causation_id = l.event_id OR e.event_id = l.causation_id
     WHERE e.seq <= %(size)s
)
SELECT seq FROM linked
"""


def _select(query: EvidenceQuery, size: int) -> int:
    """Fill the transaction's `evidence_selection` with the seqs in scope, plus every key
    rotation (a verifier needs them to trace keys); how many, or 0 when the query itself
    matched nothing (a query may match rotations: they are events like any other)."""
    conditions, params = _conditions(query, size)
    # Two statements, not an OR: each uses its own index instead of one scan of the whole log.
    queried = f"INSERT INTO evidence_selection SELECT seq, true FROM audit_event WHERE {' AND '.join(conditions)}"
    rotations = (
        "INSERT INTO evidence_selection SELECT seq, false FROM audit_event"
        " WHERE event_type = %(rotated)s AND seq <= %(size)s ON CONFLICT (seq) DO NOTHING"
    )
    with connection.cursor() as cursor:
        # Dropped at commit; an export inside a caller's transaction finds the previous one's.
        cursor.execute("DROP TABLE IF EXISTS pg_temp.evidence_selection")
        cursor.execute(
            "CREATE TEMPORARY TABLE evidence_selection (seq bigint PRIMARY KEY, queried boolean NOT NULL)"
            " ON COMMIT DROP"
        )
        cursor.execute(queried, params)
        cursor.execute(rotations, params)
        cursor.execute("SELECT count(*), count(*) FILTER (WHERE queried) FROM evidence_selection")
        total, matched = cursor.fetchone()
    return total if matched else 0


def query_matches(query: EvidenceQuery) -> bool:
    """Whether any event of the log matches the query now: an export that would find none is
    refused when it is asked for, not after it was queued."""
    conditions, params = _conditions(query, 2**63 - 1)  # every seq the log holds
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM audit_event WHERE {' AND '.join(conditions)})", params)
        return bool(cursor.fetchone()[0])


def _conditions(query: EvidenceQuery, size: int) -> tuple[list[str], dict[str, Any]]:
    """The query as SQL conditions on audit_event, up to tree size `size`."""
    conditions = ["seq <= %(size)s"]
    params: dict[str, Any] = {"size": size, "rotated": KEY_ROTATED}
    for index, (name, value) in enumerate(query.scopes):
        if name not in _scopes:
            raise EvidenceError(f"no evidence scope named {name!r}; known: {', '.join(scope_names()) or 'none'}")
        streams = _scopes[name].streams_sql.replace("%(value)s", f"%(scope_{index})s")
        conditions.append(f"seq IN ({_LINKED_SQL.format(streams=streams)})")
        params[f"scope_{index}"] = value
    if query.streams:
        conditions.append("(stream_type, stream_id) IN (SELECT * FROM unnest(%(types)s::text[], %(ids)s::text[]))")
        params["types"] = [kind for kind, _ in query.streams]
        params["ids"] = [ident for _, ident in query.streams]
    if query.since:
        conditions.append("occurred_at >= %(since)s")
        params["since"] = query.since
    if query.until:
        conditions.append("occurred_at <= %(until)s")
        params["until"] = query.until
    return conditions, params


SLICE = 5000  # seqs read from the selection at a time


def _selected_slices() -> Iterator[list[int]]:
    """The selected seqs in ascending order, SLICE at a time."""
    after = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT seq FROM evidence_selection WHERE seq > %s ORDER BY seq LIMIT %s", (after, SLICE))
            seqs = [seq for (seq,) in cursor.fetchall()]
            if not seqs:
                return
            yield seqs
            after = seqs[-1]


# ---- writing ---------------------------------------------------------------------------------


def _write_bundle(
    path: Path,
    query: EvidenceQuery,
    checkpoint: Checkpoint,
    signer: SigningKey,
    selected: int,
    created_by: str,
    progress,
) -> ExportSummary:
    files: dict[str, str] = {}
    digests: set[str] = set()
    timeline = Timeline(selected)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:

        def write(name: str, chunks) -> None:
            files[name] = _write_member(bundle, name, chunks)

        write("events.jsonl", _event_lines(selected, digests if query.include_data else None, timeline, progress))
        write("proofs.jsonl", _proof_lines(checkpoint.tree_size))
        write("keys.json", [canonicalize(keys_as_of(checkpoint.tree_size))])
        write("consistency.jsonl", _consistency_lines(checkpoint))
        stored, missing = 0, []
        if query.include_data:
            for digest in sorted(digests):
                if not blob_exists(digest):
                    missing.append(digest)
                    continue
                with storage_reached(), default_storage.open(blob_path(digest), "rb") as handle:
                    write(f"data/{digest}", iter(functools.partial(handle.read, 1 << 20), b""))
                stored += 1
        write("witnesses.json", [canonicalize(sorted((w.as_listed() for w in cosigning.configured()), key=_by_id))])
        write("report.html", [render_report(timeline, checkpoint.as_dict(), query.as_manifest(), missing).encode()])
        manifest = canonicalize(
            {
                "format": BUNDLE_FORMAT,
                "log_id": str(checkpoint.log_id),
                "created_at": format_time(dt.datetime.now(dt.UTC)),
                "created_by": created_by,
                "query": query.as_manifest(),
                "checkpoint": {**checkpoint.as_dict(), "cosignatures": cosigning.cosignatures_of(checkpoint)},
                "files": files,
            }
        )
        signature = base64.b64encode(signer.sign(manifest)).decode("ascii")
        bundle.writestr("manifest.json", manifest)
        bundle.writestr("manifest.sig", canonicalize({"key_id": signer.key_id, "signature": signature}))
    return ExportSummary(path, selected, checkpoint.tree_size, stored, missing)


def _by_id(witness: dict) -> str:
    return witness["witness_id"]


BLOCK_BYTES = 1 << 20  # chunks are joined into blocks of this size for the writing thread
QUEUED_BLOCKS = 8


def _write_member(bundle: zipfile.ZipFile, name: str, chunks: Iterable[bytes]) -> str:
    """Write one file of the bundle; return its SHA-256. Chunks are joined into blocks that a
    second thread hashes and compresses (both release the GIL), overlapping the producer. When
    the writing fails (a full disk), the producer stops at its next block and the error is raised
    here: it must not wait on a queue that no one reads any more."""
    blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_BLOCKS)
    digest = hashlib.sha256()
    failed: list[BaseException] = []

    def consume(handle) -> None:
        while (block := blocks.get()) is not None:
            if failed:
                continue  # drain, so that the producer never blocks
            try:
                digest.update(block)
                handle.write(block)
            except BaseException as error:  # noqa: BLE001 - raised again in the producer's thread
                failed.append(error)

    with bundle.open(name, "w", force_zip64=True) as handle:
        consumer = threading.Thread(target=consume, args=(handle,), name=f"zip-{name}")
        consumer.start()
        try:
            pending: list[bytes] = []
            size = 0
            for chunk in chunks:
                pending.append(chunk)
                size += len(chunk)
                if size >= BLOCK_BYTES:
                    blocks.put(b"".join(pending))
                    pending, size = [], 0
                    if failed:
                        break
            if pending and not failed:
                blocks.put(b"".join(pending))
        finally:
            blocks.put(None)
            consumer.join()
        if failed:
            raise failed[0]
    return digest.hexdigest()


def _event_lines(selected: int, digests: set[str] | None, timeline: Timeline, progress) -> Iterator[bytes]:
    """An events.jsonl line per selected event (audit.segment.event_line: assembled without
    re-encoding), a slice of the selection at a time."""
    done = 0
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:  # server-side binding: binary results
        for seqs in _selected_slices():
            cursor.execute(
                "SELECT seq, canonical, hash, signature FROM audit_event WHERE seq = ANY(%s) ORDER BY seq",
                (seqs,),
                binary=True,
            )
            for seq, canonical, digest, signature in cursor:
                canonical = bytes(canonical)
                # "type" is the envelope's last member in canonical order: its value ends the bytes.
                kind = canonical[canonical.rindex(b',"type":"') + 9 : -2].decode()
                if digests is not None or timeline.lists(kind):
                    envelope = orjson.loads(canonical)
                    if digests is not None:
                        digests.update(_referenced_digests(envelope["payload"]))
                    timeline.add(envelope)
                else:
                    timeline.count(kind, seq)
                yield event_line(canonical, bytes(digest), bytes(signature))
                done += 1
                if progress and done % 5000 == 0:
                    progress(done, selected)
    if progress:
        progress(done, selected)


def _referenced_digests(payload: dict) -> Iterator[str]:
    """Data files an event references: string values of keys ending in _digest, lists in _digests."""
    for key, value in payload.items():
        if key.endswith("_digest") and isinstance(value, str) and _is_sha256(value):
            yield value
        elif key.endswith("_digests") and isinstance(value, list):
            yield from (item for item in value if isinstance(item, str) and _is_sha256(item))


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _proof_lines(size: int) -> Iterator[bytes]:
    """canon({"leaf_index", "path", "seq", "tree_size"}) per selected event (keys in that order).
    A slice of the selection at a time: the stored nodes its paths need, fetched in one query,
    each shared step hex-encoded once. The steps past the tree's right edge are the same few for
    every slice (at most one a level), so they are computed once."""
    edge: dict[tuple[int, int], bytes] = {}
    for seqs in _selected_slices():
        paths = [merkle.inclusion_path_nodes(seq - 1, size) for seq in seqs]
        steps: set[tuple[int, int]] = set().union(*paths)
        # A step past the right edge stands for the part of its subtree below `size` (see merkle).
        partial = {(level, position) for level, position in steps if (position + 1) << level > size}
        ranges = {step: merkle.path_node_range(*step, size) for step in partial - edge.keys()}
        needed = (steps - partial).union(*(merkle.perfect_subtrees(*r) for r in ranges.values()))
        nodes = checkpoints.stored_nodes(needed)
        quoted = {node: b'"%s"' % digest.hex().encode() for node, digest in nodes.items()}
        for step, (start, end) in ranges.items():
            digest = merkle.range_hash(start, end, functools.partial(_node, nodes))
            edge[step] = b'"%s"' % digest.hex().encode()
        quoted.update(edge)
        for seq, nodes_of_path in zip(seqs, paths, strict=True):
            path = b",".join(map(quoted.__getitem__, nodes_of_path))
            yield b'{"leaf_index":%d,"path":[%s],"seq":%d,"tree_size":%d}\n' % (seq - 1, path, seq, size)


def _node(nodes: dict[tuple[int, int], bytes], level: int, index: int) -> bytes:
    return nodes[(level, index)]


def keys_as_of(tree_size: int) -> list[dict]:
    """keys.json as of a checkpoint: the keys valid up to its tree size (and one valid from the
    next seq, which may sign it), the last left open. Later keys, and their rotations, belong to
    a later checkpoint: a bundle or segment that listed them would not verify."""
    entries = [entry for entry in _key_entries() if entry["valid_from_seq"] <= tree_size + 1]
    entries[-1]["valid_to_seq"] = None
    return entries


def _key_entries() -> list[dict]:
    """keys.json of the format: every key of the log with the seqs it signs."""
    return [
        {
            "key_id": key.key_id,
            "public_key": base64.b64encode(key.public_raw).decode("ascii"),
            "valid_from_seq": key.valid_from_seq,
            "valid_to_seq": key.valid_to_seq,
        }
        for key in signing_keys()
    ]


EARLIER_CHECKPOINTS = 20


def _consistency_lines(checkpoint: Checkpoint) -> Iterator[bytes]:
    earlier = Checkpoint.objects.filter(tree_size__lt=checkpoint.tree_size).order_by("-tree_size")
    for old in reversed(list(earlier[:EARLIER_CHECKPOINTS])):
        path = [h.hex() for h in checkpoints.consistency_proof(old.tree_size, checkpoint.tree_size)]
        yield canonicalize({"checkpoint": old.as_dict(), "path": path}) + b"\n"
