"""Re-apply the log's least privilege after migrations: the application role may only SELECT
and INSERT on the audit tables (deploy/grant_audit.sql). Run as the owner role."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection, transaction

GRANTS = Path(settings.BASE_DIR) / "deploy" / "grant_audit.sql"


class Command(BaseCommand):
    help = "Apply deploy/grant_audit.sql (run after migrate, as the owner role)."

    def handle(self, *args, **options):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = 'driftledger_app'")
            if cursor.fetchone() is None:
                self.stdout.write("No role driftledger_app here (deploy/roles.sql creates it): nothing to apply.")
                return
            try:
                with transaction.atomic():  # all of the grants or none: a half-applied least privilege is neither
                    cursor.execute(GRANTS.read_text())
            except DatabaseError as exc:
                raise CommandError(
                    f"the grants could not be applied ({str(exc).strip()}): run this as the role that owns the "
                    "audit tables (deploy/README.md); nothing was changed"
                ) from exc
        self.stdout.write("The application role may only SELECT and INSERT on the audit tables.")
