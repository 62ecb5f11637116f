from django.core.management.base import BaseCommand, CommandError

from audit.errors import DomainError
from monitoring.access.services import person_deactivate, person_reactivate
from monitoring.management.commands._people import operator


class Command(BaseCommand):
    help = "Deactivate a person (no sign-in, no action; their history stays), or --reactivate them."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--reactivate", action="store_true")

    def handle(self, *args, username, reason, reactivate, **options):
        change = person_reactivate if reactivate else person_deactivate
        try:
            change(username=username, actor=operator(), reason=reason)
        except DomainError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{'Reactivated' if reactivate else 'Deactivated'} {username}.")
