import sys

from django.core.management.base import BaseCommand

from audit import projections


class Command(BaseCommand):
    help = "Drop the read models and rebuild them by replaying the audit log."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="projections to rebuild (default: all)")

    def handle(self, *args, names=(), **options):
        try:
            counts = projections.rebuild(list(names) or None)
        except LookupError as exc:
            self.stderr.write(str(exc))
            sys.exit(2)
        for name, count in counts.items():
            self.stdout.write(f"{name}: replayed {count} events")
