from django.core.management.base import BaseCommand, CommandError

from audit.errors import DomainError
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
        try:
            recorded = people_record_existing(actor=operator(), reason=reason)
        except DomainError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Recorded {len(recorded)} existing account(s): {', '.join(recorded) or 'none'}.")
