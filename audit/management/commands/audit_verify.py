import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from audit.verify import verify_log
from audit.witnesses import read_witnessed


class Command(BaseCommand):
    help = "Verify the whole audit log: hashes, chain, signatures, gaps, stream versions, columns."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
        parser.add_argument(
            "--witness",
            type=Path,
            action="append",
            default=[],
            help="directory of witnessed checkpoints to check the log against (repeatable)",
        )

    def handle(self, *args, workers=None, witness=(), **options):
        if workers is not None and workers < 1:
            self.stderr.write("--workers must be at least 1")
            sys.exit(2)
        witnessed = []
        for path in witness:
            if not path.is_dir():
                self.stderr.write(f"--witness {path}: not a directory")
                sys.exit(2)
            witnessed += read_witnessed(path)
        report = verify_log(workers=workers, witnessed=witnessed or None)
        rate = report.events / report.seconds if report.seconds else 0.0
        if report.ok:
            against = f", consistent with {len(witnessed)} witnessed checkpoint(s)" if witnessed else ""
            self.stdout.write(
                f"OK: {report.events} events verified (seq 1..{report.events}), {report.keys} signing "
                f"key(s){against}, head {report.head_hash[:16]}…, {report.seconds:.2f} s ({rate:,.0f} events/s)"
            )
            return
        assert report.failure is not None  # not ok: there is a first failure
        self.stderr.write(f"FAILED at seq {report.failure.seq}: {report.failure.reason}")
        sys.exit(1)
