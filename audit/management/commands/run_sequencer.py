"""`manage.py run_sequencer`: the long-running process that seals submitted appends (see
audit/sequencer.py). Run one or more; one holds the lease and seals, the others stand by."""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.models import SequencerLease
from audit.sequencer import Sequencer

NAME_LENGTH = SequencerLease._meta.get_field("holder").max_length  # the lease names its holder


MAX_BATCH = 100_000  # submissions a transaction seals: beyond it one seal holds the log for minutes


class Command(BaseCommand):
    help = "Seal appends submitted to the sequencer (AUDIT_SEQUENCER=true); stops on SIGTERM or Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--name", help="this sequencer's name in the lease (default: host:pid)")
        parser.add_argument(
            "--batch",
            type=int,
            help=f"submissions sealed per transaction, 1 to {MAX_BATCH:,} (default {settings.AUDIT_SEQUENCER_BATCH})",
        )

    def handle(self, *args, **options):
        if options["batch"] is not None and not 1 <= options["batch"] <= MAX_BATCH:
            raise CommandError(f"--batch must be 1 to {MAX_BATCH:,}")
        if options["name"] is not None and len(options["name"]) > NAME_LENGTH:
            # Else it could never take the lease, and would stand by forever saying why in a traceback.
            raise CommandError(f"--name must be at most {NAME_LENGTH} characters")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        sequencer = Sequencer(options["name"], batch=options["batch"])
        self.stdout.write(f"sequencer {sequencer.name}: sealing when it holds the lease", ending="\n")
        self.stdout.flush()
        sequencer.run(lambda: not stop.is_set())
        self.stdout.write(f"sequencer {sequencer.name}: stopped")
