from django.core.management.base import BaseCommand

from monitoring.access.services import people_record_existing
from monitoring.management.commands._people import operator


class Command(BaseCommand):
    help = (
        "Once, after upgrading from a release where roles were not yet signed events: record every "
        "existing account and the roles it holds now in the log. Run it before any rebuild_projections."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reason", required=True)

    def handle(self, *args, reason, **options):
        recorded = people_record_existing(actor=operator(), reason=reason)
        self.stdout.write(f"Recorded {len(recorded)} existing account(s): {', '.join(recorded) or 'none'}.")
