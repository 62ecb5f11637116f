from django.core.management.base import BaseCommand, CommandError

from audit.errors import DomainError
from monitoring.access.domain import Role
from monitoring.access.services import role_grant, role_revoke
from monitoring.management.commands._people import operator


class Command(BaseCommand):
    help = "Grant (or with --revoke, take back) a role, with a reason: a signed event."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=list(Role))
        parser.add_argument("--reason", required=True)
        parser.add_argument("--revoke", action="store_true")

    def handle(self, *args, username, role, reason, revoke, **options):
        change = role_revoke if revoke else role_grant
        try:
            change(username=username, role=role, actor=operator(), reason=reason)
        except DomainError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{'Revoked' if revoke else 'Granted'} {role} {'from' if revoke else 'to'} {username}.")
