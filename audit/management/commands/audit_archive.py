import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from audit.archive import ArchiveError, partition_archive, partition_states, segment_copy_out, segments_verify
from audit.blobs import StorageUnavailable
from audit.models import LogSegment
from audit.store import Actor


class Command(BaseCommand):
    help = (
        "Archive old partitions of the log to object storage as verifiable segments, list them, verify them, "
        "or copy one out for offline verification. Without an action: list the partitions."
    )

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--archive", metavar="PARTITION", action="append", help="archive this partition")
        action.add_argument(
            "--archive-all", action="store_true", help="archive every partition that can be, oldest first"
        )
        action.add_argument("--verify", action="store_true", help="read every segment back and verify it")
        action.add_argument("--copy-out", metavar="FIRST_SEQ", type=int, help="copy the segment from this seq to --out")
        parser.add_argument("--out", type=Path, help="directory for --copy-out (created; must be empty)")
        parser.add_argument("--reason", default=None, help="why (recorded in the audit.SegmentArchived event)")
        parser.add_argument("--actor", default="operator", help="who archives (recorded in the event)")

    def handle(self, *args, archive=None, archive_all=False, verify=False, copy_out=None, out=None, **options):
        if out is not None and copy_out is None:
            self.stderr.write("--out goes with --copy-out FIRST_SEQ")
            sys.exit(2)
        try:
            if archive or archive_all:
                self._archive(archive, options["actor"], options["reason"])
            elif verify:
                self._verify()
            elif copy_out is not None:
                self._copy_out(copy_out, out)
            else:
                self._list()
        except StorageUnavailable as exc:
            recorded = "; nothing was recorded" if archive or archive_all else ""
            self.stderr.write(f"{exc}{recorded}; try again")
            sys.exit(1)

    def _list(self) -> None:
        for state in partition_states():
            if state.segment is not None:
                status = f"archived: {state.segment.file_bytes:,} bytes, SHA-256 {state.segment.file_sha256}"
            else:
                status = f"not archivable yet: {state.blocker}" if state.blocker else "archivable"
            self.stdout.write(f"{state.name}  seqs {state.first_seq:,} to {state.last_seq:,}  {status}")

    def _archive(self, names: list[str] | None, actor: str, reason: str | None) -> None:
        if names is None:
            names = [s.name for s in partition_states() if s.segment is None and s.blocker is None]
            if not names:
                self.stdout.write("No partition can be archived now (audit_archive lists why).")
                return
        for name in names:
            try:
                segment = partition_archive(name, actor=Actor("user", actor, actor), reason=reason)
            except ArchiveError as exc:
                self.stderr.write(str(exc))
                sys.exit(1)
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

    def _copy_out(self, first_seq: int, out: Path | None) -> None:
        if out is None:
            self.stderr.write("--copy-out needs --out DIR")
            sys.exit(2)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            self.stderr.write(f"{out} must be a new or empty directory")
            sys.exit(2)
        segment = LogSegment.objects.filter(first_seq=first_seq).first()
        if segment is None:
            self.stderr.write(f"no segment starts at seq {first_seq} (audit_archive lists them)")
            sys.exit(2)
        try:
            segment_copy_out(segment, out)
        except ArchiveError as exc:
            self.stderr.write(str(exc))
            sys.exit(1)
        self.stdout.write(
            f"Wrote the segment of seqs {segment.first_seq:,} to {segment.last_seq:,} to {out}; verify it offline with "
            f"python -m audit.verifier --segment {out} --trusted-key KEY.pem (the key of its checkpoint: "
            f"python manage.py audit_keys --pem-dir DIR writes them)"
        )
