import sys

from django.core.management.base import BaseCommand

from audit.verify import verify_log


class Command(BaseCommand):
    help = "Verify the whole audit log: hashes, chain, signatures, gaps, stream versions, columns."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")

    def handle(self, *args, workers=None, **options):
        if workers is not None and workers < 1:
            self.stderr.write("--workers must be at least 1")
            sys.exit(2)
        report = verify_log(workers=workers)
        rate = report.events / report.seconds if report.seconds else 0.0
        if report.ok:
            self.stdout.write(
                f"OK: {report.events} events verified (seq 1..{report.events}), {report.keys} signing "
                f"key(s), head {report.head_hash[:16]}…, {report.seconds:.2f} s ({rate:,.0f} events/s)"
            )
            return
        self.stderr.write(f"FAILED at seq {report.failure.seq}: {report.failure.reason}")
        sys.exit(1)
