import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from audit.anchor import AnchorError, anchor_path, anchor_writable
from audit.selfcheck import known_checkpoints, log_verify_recorded
from audit.verify import NO_ANCHOR, verify_log
from audit.witnesses import WitnessUnreadable

MAX_WORKERS = 256  # processes: past this many, a mistyped number forks the machine to a halt


class Command(BaseCommand):
    help = (
        "Verify the whole audit log: hashes, chain, signatures, gaps, stream versions, columns, the key chain from "
        "the trust anchor, and every checkpoint stored or held by a witness."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--workers", type=int, default=None, help=f"processes, 1 to {MAX_WORKERS} (default: one per core)"
        )
        parser.add_argument(
            "--witness",
            type=Path,
            action="append",
            default=[],
            help="another directory of witnessed checkpoints to check the log against (repeatable); "
            "the configured witnesses are always checked",
        )
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="verify only the events after the head of the latest recorded verification that passed, "
            "chained to it, and record the outcome (the whole log when none has passed yet)",
        )

    def handle(self, *args, workers=None, witness=(), incremental=False, **options):
        if workers is not None and not 1 <= workers <= MAX_WORKERS:
            self.stderr.write(f"--workers must be 1 to {MAX_WORKERS}")
            sys.exit(2)
        if incremental and witness:
            self.stderr.write("--incremental checks no witness (the full verification does): drop --witness")
            sys.exit(2)
        for path in witness:
            if not path.is_dir():
                self.stderr.write(f"--witness {path}: not a directory")
                sys.exit(2)
        try:
            if incremental:
                self._incremental(workers)
                return
            checkpoints, unreachable = known_checkpoints(witness)
            report = verify_log(workers=workers, witnessed=checkpoints or None)
        except (AnchorError, WitnessUnreadable) as exc:
            self.stderr.write(f"FAILED: {exc}")
            sys.exit(1)
        for note in unreachable:
            self.stderr.write(f"WARNING: witness not checked: {note}")
        rate = report.events / report.seconds if report.seconds else 0.0
        if report.ok and report.events == 0:
            self.stdout.write(f"OK: the log is empty; {len(checkpoints)} checkpoint(s) to hold it against")
            return
        if report.ok:
            self._anchor_warning()
            self.stdout.write(
                f"OK: {report.events} events verified (seq 1..{report.events}), {report.keys} signing key(s) "
                f"traced to the trust anchor, consistent with {len(checkpoints)} checkpoint(s) stored or witnessed, "
                f"head {report.head_hash[:16]}…, {report.seconds:.2f} s ({rate:,.0f} events/s)"
            )
            return
        assert report.failure is not None  # not ok: there is a first failure
        self._failed(report.failure.seq, report.failure.reason)

    def _failed(self, seq, reason: str) -> None:
        if NO_ANCHOR in reason:
            self.stderr.write(f"NOT AUTHENTICATED: {reason}")
            sys.exit(3)
        self.stderr.write(f"FAILED at seq {seq}: {reason}")
        sys.exit(1)

    def _anchor_warning(self) -> None:
        if anchor_writable():
            self.stderr.write(
                f"note: the trust anchor {anchor_path()} belongs to this process's user: it holds against whoever "
                "can change the database, not against this user; provision it read-only, owned by another user"
            )

    def _incremental(self, workers: int | None) -> None:
        try:
            verification = log_verify_recorded(workers=workers, incremental=True)
        except Exception as exc:  # noqa: BLE001 - recorded and notified by log_verify_recorded
            self.stderr.write(f"FAILED: {type(exc).__name__}: {exc}")
            sys.exit(1)
        first, last = verification.first_seq, verification.events_checked
        if verification.ok:
            self._anchor_warning()
            scope = f"seq {first}..{last}, after the head verified before" if first > 1 else f"seq 1..{last}"
            if first > last:
                scope = f"none new since seq {last}, verified before"
            self.stdout.write(
                f"OK: {max(0, last - first + 1)} events verified ({scope}), head {verification.head_hash[:16]}…, "
                f"{verification.seconds:.2f} s (recorded as verification {verification.id})"
            )
            return
        self._failed(verification.failed_seq, verification.problem.removeprefix(f"seq {verification.failed_seq}: "))
