import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from audit.archive import (
    ArchiveError,
    partition_archive,
    partition_states,
    segment_copy_out,
    segment_manifest_read,
    segment_restore,
    segments_verify,
)
from audit.blobs import StorageUnavailable
from audit.models import LogSegment
from audit.store import Actor


class Command(BaseCommand):
    help = (
        "Archive old partitions of the log to object storage as verifiable segments, list them, verify them, "
        "copy one out for offline verification, or remake one lost from storage. Without an action: list."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--archive", metavar="PARTITION", action="append", help="archive this partition")
        action.add_argument(
            "--archive-all", action="store_true", help="archive every partition that can be, oldest first"
        )
        action.add_argument("--verify", action="store_true", help="read every segment back and verify it")
        action.add_argument("--copy-out", metavar="FIRST_SEQ", type=int, help="copy the segment from this seq to --out")
        action.add_argument(
            "--restore", metavar="FIRST_SEQ", type=int, help="remake the segment from this seq in storage, from the log"
        )
        parser.add_argument("--out", type=Path, help="directory for --copy-out (created; must be empty)")
        parser.add_argument("--reason", help="why (recorded in the audit.SegmentArchived event)")
        parser.add_argument("--actor", help="who archives (recorded in the event; default: operator)")

    def handle(self, *args, archive=None, archive_all=False, verify=False, copy_out=None, restore=None, **options):
        archiving = bool(archive or archive_all)
        if options["out"] is not None and copy_out is None:
            self._usage("--out goes with --copy-out FIRST_SEQ")
        if not archiving and (options["reason"] is not None or options["actor"] is not None):
            self._usage("--reason and --actor go with --archive or --archive-all")
        for name in ("reason", "actor"):  # what the event records for good: blank says nothing
            if options[name] is not None and not options[name].strip():
                self._usage(f"--{name} must not be blank")
        try:
            if archiving:
                self._archive(archive, options["actor"] or "operator", options["reason"])
            elif verify:
                self._verify()
            elif copy_out is not None:
                self._copy_out(self._segment(copy_out), options["out"])
            elif restore is not None:
                self._restore(self._segment(restore))
            else:
                self._list()
        except ArchiveError as exc:
            self.stderr.write(str(exc))
            sys.exit(1)
        except StorageUnavailable as exc:
            recorded = "; nothing was recorded" if archiving else ""
            self.stderr.write(f"{exc}{recorded}; try again")
            sys.exit(1)

    def _usage(self, problem: str) -> None:
        self.stderr.write(problem)
        sys.exit(2)

    def _segment(self, first_seq: int) -> LogSegment:
        segment = LogSegment.objects.filter(first_seq=first_seq).first()
        if segment is None:
            within = LogSegment.objects.filter(first_seq__lte=first_seq, last_seq__gte=first_seq).first()
            hint = f"seq {first_seq} lies in the segment from seq {within.first_seq}" if within else "see audit_archive"
            self._usage(f"no segment starts at seq {first_seq} ({hint})")
        return segment

    def _list(self) -> None:
        for state in partition_states():
            if state.segment is not None:
                status = f"archived: {state.segment.file_bytes:,} bytes, SHA-256 {state.segment.file_sha256}"
            else:
                status = f"not archivable yet: {state.blocker}" if state.blocker else "archivable"
            self.stdout.write(f"{state.name}  seqs {state.first_seq:,} to {state.last_seq:,}  {status}")

    def _archive(self, names: list[str] | None, actor: str, reason: str | None) -> None:
        states = partition_states()
        if names is None:
            names = [s.name for s in states if s.segment is None and s.blocker is None]
            if not names:
                self.stdout.write("No partition can be archived now (audit_archive lists why).")
                return
        unknown = sorted(set(names) - {s.name for s in states})
        if unknown:
            known = ", ".join(s.name for s in states[:6]) + (", …" if len(states) > 6 else "")
            self._usage(f"the log has no partition {', '.join(unknown)}; its partitions: {known}")
        for name in dict.fromkeys(names):  # a partition named twice is archived once
            segment = partition_archive(name, actor=Actor("user", actor, actor), reason=reason)
            self.stdout.write(
                f"Archived {name}: seqs {segment.first_seq:,} to {segment.last_seq:,}, {segment.file_bytes:,} bytes "
                f"as blobs/{segment.file_sha256}, tied to the checkpoint of {segment.tree_size:,} events; "
                f"recorded at seq {segment.archived_seq}."
            )

    def _verify(self) -> None:
        checks = segments_verify()
        if not checks:
            self.stdout.write("No segment is archived.")
            return
        for check in checks:
            segment = check.segment
            span = f"segment {segment.first_seq:,} to {segment.last_seq:,}"
            if check.problem is None:
                self.stdout.write(f"{span}: OK, {check.events:,} events verified")
            else:
                self.stdout.write(f"{span}: FAILED: {check.problem}")
        if any(check.problem for check in checks):
            sys.exit(1)

    def _copy_out(self, segment: LogSegment, out: Path | None) -> None:
        if out is None:
            self._usage("--copy-out needs --out DIR")
            return
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            self._usage(f"{out} must be a new or empty directory")
        segment_copy_out(segment, out)
        key_id = segment_manifest_read(segment)["checkpoint"]["key_id"]
        self.stdout.write(
            f"Wrote the segment of seqs {segment.first_seq:,} to {segment.last_seq:,} to {out}. Its checkpoint is "
            f"signed by key {key_id}: verify it offline with python -m audit.verifier --segment {out} "
            f"--trusted-key {key_id}.pem (python manage.py audit_keys --pem-dir DIR writes the keys)"
        )

    def _restore(self, segment: LogSegment) -> None:
        remade = segment_restore(segment)
        what = "Remade the segment" if remade else "Kept the stored segment (its SHA-256 is the archived one)"
        self.stdout.write(
            f"{what} of seqs {segment.first_seq:,} to {segment.last_seq:,} in storage"
            f"{' from the log' if remade else ''}: blobs/{segment.file_sha256}, the bytes archived, verified there."
        )
