"""An archived segment of the log (docs/evidence-format.md, "Archived segments"): the events of one
seq range as the bundle's events.jsonl lines, cut into gzip members of `block_events` lines each
(so `zcat` reads the whole, and a reader decompresses one block from its offset), with a manifest
that ties it to a signed checkpoint: the range's perfect-subtree hashes and an RFC 9162 path from
each to the checkpoint's root.

Pure: no Django, no database. The archiver writes with `SegmentWriter`; the archiver, the log's
verification and any third party check with `segment_verify`, which reads the file once, in
bounded memory.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from audit import merkle
from audit.envelope import CHECKPOINT_MEMBERS, checkpoint_body
from audit.verification import KeySchedule, verify_rows

SEGMENT_FORMAT = "driftledger-segment/1"
BLOCK_EVENTS = 1024
_GZIP_LEVEL = 6
_READ = 1 << 20
_MAX_LINE = 64 << 20
MAX_SEQ = 2**53  # canonical JSON (RFC 8785) holds integers exactly below 2^53 only
MANIFEST_MEMBERS = (
    "format",
    "log_id",
    "first_seq",
    "last_seq",
    "prev_hash",
    "last_hash",
    "file_sha256",
    "file_bytes",
    "block_events",
    "blocks",
    "subtrees",
    "checkpoint",
    "paths",
)


class SegmentInvalid(ValueError):
    """The segment or its manifest is not what the format and the checkpoint say; `seq` is the
    first bad event where one is to blame; `in_manifest`: the manifest is (not the file)."""

    def __init__(self, reason: str, seq: int | None = None, *, in_manifest: bool = False) -> None:
        super().__init__(f"seq {seq}: {reason}" if seq is not None else reason)
        self.reason, self.seq, self.in_manifest = reason, seq, in_manifest


class ManifestInvalid(SegmentInvalid):
    def __init__(self, reason: str, seq: int | None = None) -> None:
        super().__init__(reason, seq, in_manifest=True)


def event_line(canonical: bytes, digest: bytes, signature: bytes) -> bytes:
    """canon({"event", "hash", "signature"}) and a newline: the members sort in that order and the
    stored bytes are canon(event), so the line is assembled without re-encoding."""
    return b'{"event":%s,"hash":"%s","signature":"%s"}\n' % (
        canonical,
        digest.hex().encode(),
        base64.b64encode(signature),
    )


@dataclass
class WrittenSegment:
    """What the writer knows once the last event is in: the manifest's facts about the file."""

    first_seq: int
    last_seq: int
    prev_hash: str
    last_hash: str
    file_sha256: str
    file_bytes: int
    block_events: int
    blocks: list[list[int]]  # [first seq, offset, length] per gzip member
    subtrees: list[tuple[int, int, bytes]]  # (level, position, hash) of the leaves first_seq−1 … last_seq−1


@dataclass
class SegmentWriter:
    """Writes the events first_seq … last_seq, in order, to `out`."""

    out: IO[bytes]
    first_seq: int
    last_seq: int
    prev_hash: str
    block_events: int = BLOCK_EVENTS
    _next: int = 0
    _pending: list[bytes] = field(default_factory=list)
    _blocks: list[list[int]] = field(default_factory=list)
    _offset: int = 0
    _last_hash: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.first_seq <= self.last_seq or self.block_events < 1:
            raise ValueError(f"no segment of seqs {self.first_seq} to {self.last_seq}")
        self._next = self.first_seq
        self._sha256 = hashlib.sha256()
        self._subtrees = merkle.SubtreeHasher(self.first_seq - 1, self.last_seq)

    def add(self, seq: int, canonical: bytes, digest: bytes, signature: bytes) -> None:
        if seq != self._next:
            raise ValueError(f"event {seq} where {self._next} was due: a segment holds every seq of its range")
        self._pending.append(event_line(canonical, digest, signature))
        self._subtrees.add(merkle.leaf_hash(canonical))
        self._last_hash = digest.hex()
        self._next += 1
        if len(self._pending) == self.block_events:
            self._flush()

    def finish(self) -> WrittenSegment:
        if self._next != self.last_seq + 1:
            raise ValueError(f"the segment ends at {self._next - 1}, not {self.last_seq}")
        self._flush()
        return WrittenSegment(
            self.first_seq,
            self.last_seq,
            self.prev_hash,
            self._last_hash,
            self._sha256.hexdigest(),
            self._offset,
            self.block_events,
            self._blocks,
            self._subtrees.finish(),
        )

    def _flush(self) -> None:
        if not self._pending:
            return
        # mtime 0: the same events always make the same bytes, so the same file and digest
        member = _gzip_member(b"".join(self._pending))
        self.out.write(member)
        self._sha256.update(member)
        first = self._next - len(self._pending)
        self._blocks.append([first, self._offset, len(member)])
        self._offset += len(member)
        self._pending.clear()


def _gzip_member(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)


def segment_manifest(
    *, log_id: str, written: WrittenSegment, checkpoint: dict[str, Any], paths: list[list[bytes]]
) -> dict[str, Any]:
    """The manifest: the segment's facts, the signed checkpoint it is tied to, and each subtree's
    path to that checkpoint's root."""
    return {
        "format": SEGMENT_FORMAT,
        "log_id": log_id,
        "first_seq": written.first_seq,
        "last_seq": written.last_seq,
        "prev_hash": written.prev_hash,
        "last_hash": written.last_hash,
        "file_sha256": written.file_sha256,
        "file_bytes": written.file_bytes,
        "block_events": written.block_events,
        "blocks": written.blocks,
        "subtrees": [[level, position, digest.hex()] for level, position, digest in written.subtrees],
        "checkpoint": checkpoint,
        "paths": [[step.hex() for step in path] for path in paths],
    }


# ---- verification ----------------------------------------------------------------------------


def segment_verify(data: IO[bytes], manifest: dict[str, Any], *, keys: KeySchedule) -> int:
    """Check the segment file against its manifest and the manifest against its checkpoint; return
    the events verified, or raise SegmentInvalid naming the first problem.

    Checked: the manifest's shape; the checkpoint's signature, under the key of that id in `keys`;
    each subtree's path to the checkpoint's root; the file's length and SHA-256; every block where
    the manifest puts it, as long and as full as it says; every event's hash, seq, log, chain from
    `prev_hash` to `last_hash`, and signature under the key valid at its seq; and that the leaves
    give the manifest's subtrees. Whom to trust for `keys` and the checkpoint's key is the caller's
    to decide (audit.verifier traces it)."""
    _check_shape(manifest)
    first, last = manifest["first_seq"], manifest["last_seq"]
    subtrees = [(level, position, bytes.fromhex(digest)) for level, position, digest in manifest["subtrees"]]
    _check_checkpoint(manifest, subtrees, keys)
    hasher = merkle.SubtreeHasher(first - 1, last)
    last_hash = b""

    def rows() -> Iterator[tuple]:
        nonlocal last_hash
        seq = first
        for line in _lines(data, manifest):
            if seq > last:
                raise SegmentInvalid(f"the segment holds more events than seqs {first} to {last}", seq)
            canonical, last_hash, signature = _split(line, seq)
            leaf = merkle.leaf_hash(canonical)
            hasher.add(leaf)
            yield seq, canonical, last_hash, leaf, signature, None
            seq += 1

    checked, failure = verify_rows(
        rows(), first_seq=first, last_seq=last, prev_hash=manifest["prev_hash"], log_id=manifest["log_id"], keys=keys
    )
    if failure is not None:
        raise SegmentInvalid(failure.reason, failure.seq)
    if last_hash.hex() != manifest["last_hash"]:
        raise ManifestInvalid("last_hash is not the hash of the last event", last)
    if hasher.finish() != subtrees:
        raise SegmentInvalid("the events do not give the manifest's subtree hashes")
    return checked


def _check_shape(manifest: dict[str, Any]) -> None:
    """Every member of the type and range the format gives it, before any is used."""
    if not isinstance(manifest, dict) or set(manifest) != set(MANIFEST_MEMBERS):
        found = set(manifest) if isinstance(manifest, dict) else set()
        missing, extra = sorted(set(MANIFEST_MEMBERS) - found), sorted(found - set(MANIFEST_MEMBERS))
        raise ManifestInvalid(f"the manifest's members differ from the format (missing: {missing}, extra: {extra})")
    if manifest["format"] != SEGMENT_FORMAT:
        raise ManifestInvalid(f"the manifest's format is {manifest['format']!r}, not {SEGMENT_FORMAT}")
    first, last = manifest["first_seq"], manifest["last_seq"]
    if not (_int(first) and _int(last) and 1 <= first <= last):
        raise ManifestInvalid("first_seq and last_seq must be seqs, first ≤ last")
    if not (_int(manifest["file_bytes"]) and _int(manifest["block_events"]) and manifest["block_events"] >= 1):
        raise ManifestInvalid("file_bytes and block_events must be whole numbers, block_events at least 1")
    if not isinstance(manifest["log_id"], str):
        raise ManifestInvalid("log_id must be text")
    blocks = manifest["blocks"]
    if not isinstance(blocks, list) or not all(_triple(b, _int, _int, _int) for b in blocks):
        raise ManifestInvalid("blocks must be a list of [first seq, offset, length]")
    found = manifest["subtrees"]
    if not isinstance(found, list) or not all(_triple(s, _int, _int, lambda v: _hex(v, 32)) for s in found):
        raise ManifestInvalid("subtrees must be a list of [level, position, SHA-256 in hex]")
    if [(s[0], s[1]) for s in found] != merkle.perfect_subtrees(first - 1, last):
        raise ManifestInvalid(f"the subtrees are not those of the leaves {first - 1} to {last - 1}")
    paths = manifest["paths"]
    if not isinstance(paths, list) or len(paths) != len(found):
        raise ManifestInvalid("one path per subtree is due")
    if not all(isinstance(p, list) and len(p) <= 64 and all(_hex(step, 32) for step in p) for p in paths):
        raise ManifestInvalid("each path is a list of at most 64 SHA-256 in hex")
    for name in ("prev_hash", "last_hash", "file_sha256"):
        if not _hex(manifest[name], 32):
            raise ManifestInvalid(f"{name} is not a SHA-256 in hex")


def _check_checkpoint(manifest: dict[str, Any], subtrees: list[tuple[int, int, bytes]], keys: KeySchedule) -> None:
    checkpoint = manifest["checkpoint"]
    if not isinstance(checkpoint, dict) or set(checkpoint) != {*CHECKPOINT_MEMBERS, "signature"}:
        raise ManifestInvalid("the checkpoint's members differ from the format")
    if checkpoint["log_id"] != manifest["log_id"]:
        raise ManifestInvalid(f"the checkpoint is of log {checkpoint['log_id']}, not {manifest['log_id']}")
    size = checkpoint["tree_size"]
    if not _int(size) or not manifest["last_seq"] <= size < MAX_SEQ:
        raise ManifestInvalid(f"the checkpoint of {size} events does not cover seq {manifest['last_seq']}")
    if not (_hex(checkpoint["root_hash"], 32) and isinstance(checkpoint["key_id"], str)):
        raise ManifestInvalid("the checkpoint's root_hash and key_id are not of the format")
    try:
        signer = keys.verifier(checkpoint["key_id"])
    except KeyError:
        raise ManifestInvalid(f"the checkpoint's key {checkpoint['key_id']} is not a key of the log") from None
    try:
        signature = base64.b64decode(checkpoint["signature"], validate=True)
        signed = checkpoint_body(checkpoint)
    except (ValueError, TypeError):  # not base64; a member canonical JSON cannot hold
        raise ManifestInvalid("the checkpoint's signature or members are not of the format") from None
    if not signer.valid(signature, signed):
        raise ManifestInvalid(f"the checkpoint's signature does not verify (tree size {size})")
    root = bytes.fromhex(checkpoint["root_hash"])
    for (level, position, digest), path in zip(subtrees, manifest["paths"], strict=True):
        steps = [bytes.fromhex(step) for step in path]
        if not merkle.verify_subtree_inclusion(level, position, size, digest, steps, root):
            first = (position << level) + 1
            raise ManifestInvalid(f"the subtree from seq {first} is not in the checkpoint's tree", first)


def _lines(data: IO[bytes], manifest: dict[str, Any]) -> Iterator[bytes]:
    """The file's lines, member by member, each member where the block index puts it, as long and
    as full as it says; then the file's length and digest. Output is inflated a bounded piece at a
    time, so a hostile file cannot make one read hold more than _MAX_LINE."""
    sha256 = hashlib.sha256()
    first_seq, block_events = manifest["first_seq"], manifest["block_events"]
    blocks = iter(manifest["blocks"])
    offset, count, pending = 0, 0, b""
    tail: list[bytes] = []  # the pieces of a line not yet ended
    inflater, in_block = None, 0
    block: list[int] = [0, 0, 0]
    while True:
        if not pending:
            pending = data.read(_READ)
            if not pending:
                break
            sha256.update(pending)
        if inflater is None:
            inflater, in_block = zlib.decompressobj(wbits=31), 0
            block = _check_block(next(blocks, None), offset, first_seq + count, block_events, count)
        try:
            out = inflater.decompress(pending, _READ)
        except zlib.error as exc:
            raise SegmentInvalid(f"the block at byte {block[1]} is not gzip: {exc}") from None
        rest = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        offset += len(pending) - len(rest)
        pending = rest
        *ended, last_piece = out.split(b"\n")
        if ended:
            ended[0] = b"".join([*tail, ended[0]])
            tail = []
        tail.append(last_piece)
        if sum(map(len, tail)) > _MAX_LINE:
            raise SegmentInvalid(f"a line of the block at byte {block[1]} is longer than {_MAX_LINE:,} bytes")
        count += len(ended)
        in_block += len(ended)
        yield from ended
        if inflater.eof:
            if any(tail):
                raise SegmentInvalid(f"the block at byte {block[1]} ends inside a line")
            if offset - block[1] != block[2] or not 1 <= in_block <= block_events:
                raise SegmentInvalid(f"the block at byte {block[1]} is not as long or as full as the manifest says")
            inflater, tail = None, []
    if inflater is not None:
        raise SegmentInvalid(f"the file ends inside the block at byte {block[1]}")
    if next(blocks, None) is not None:
        raise SegmentInvalid("the manifest lists blocks past the file's end")
    if offset != manifest["file_bytes"]:
        raise SegmentInvalid(f"the file holds {offset:,} bytes, the manifest says {manifest['file_bytes']:,}")
    if sha256.hexdigest() != manifest["file_sha256"]:
        raise SegmentInvalid("the file is not the one the manifest names: its SHA-256 differs")


def _check_block(block: list[int] | None, offset: int, seq: int, block_events: int, before: int) -> list[int]:
    """The block the manifest lists next must start here, with this seq, after full blocks only."""
    if block is None or block[1] != offset:
        raise SegmentInvalid(f"a block starts at byte {offset}, where the manifest lists none", seq)
    if block[0] != seq:
        raise SegmentInvalid(f"the block at byte {offset} starts at seq {seq}, the manifest says {block[0]}", seq)
    if before % block_events:
        raise SegmentInvalid(f"the block before byte {offset} holds fewer than {block_events} events", seq)
    return block


def _split(line: bytes, seq: int) -> tuple[bytes, bytes, bytes]:
    try:
        decoded = orjson.loads(line)
        canonical = line[len(b'{"event":') : line.rindex(b',"hash":"')]
        digest = bytes.fromhex(decoded["hash"])
        signature = base64.b64decode(decoded["signature"], validate=True)
    except (orjson.JSONDecodeError, ValueError, KeyError, TypeError):
        raise SegmentInvalid("the line is not an events.jsonl line", seq) from None
    if event_line(canonical, digest, signature) != line + b"\n":
        raise SegmentInvalid("the line is not canon({event, hash, signature})", seq)
    return canonical, digest, signature


def _triple(value: object, *checks) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(check(v) for check, v in zip(checks, value, strict=True))


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == 2 * length and all(c in "0123456789abcdef" for c in value)
