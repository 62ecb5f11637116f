from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from audit.errors import DomainError
from monitoring.access.domain import Role
from monitoring.access.services import person_register
from monitoring.management.commands._people import operator, read_password


class Command(BaseCommand):
    help = "Register a person with a password and roles (a signed event); e.g. the first administrator."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="full name, printed on their electronic signatures")
        parser.add_argument("--email", default=None)
        parser.add_argument("--role", action="append", default=[], choices=list(Role), help="repeatable")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    def handle(self, *args, username, name, email, role, reason, password_stdin, **options):
        _check_email(email)
        password = read_password(password_stdin)
        try:
            person_register(
                username=username,
                full_name=name,
                email=email,
                password=password,
                roles=role,
                actor=operator(),
                reason=reason,
            )
        except DomainError as error:
            raise CommandError(str(error)) from error
        roles = ", ".join(dict.fromkeys(role)) or "no role yet"  # a role named twice is granted once
        self.stdout.write(f"Registered {name} ({username}) with {roles}.")


def _check_email(email: str | None) -> None:
    """The API takes only an email address (or none); the log keeps what is registered for good."""
    if not email:
        return
    try:
        validate_email(email)
    except ValidationError as error:
        raise CommandError(f"--email {email!r} is not an email address") from error
