import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from audit.keys import KeyFileError, SigningKey
from audit.rotation import signing_key_rotate
from audit.store import Actor


class Command(BaseCommand):
    help = "Introduce a new Ed25519 signing key with an audit.KeyRotated event (signed by the old key)."

    def add_arguments(self, parser):
        parser.add_argument("--new-key", type=Path, help="PEM of the new private key (default: generate one)")
        parser.add_argument("--reason", required=True, help="why the key is rotated (recorded in the event)")
        parser.add_argument("--actor", default="operator", help="who rotates it (recorded in the event)")

    def handle(self, *args, new_key=None, reason="", actor="operator", **options):
        if not reason.strip():
            self.stderr.write("--reason must not be empty")
            sys.exit(2)
        if not actor.strip():
            self.stderr.write("--actor must name who rotates the key: the log records it")
            sys.exit(2)
        try:
            key = SigningKey.load(new_key) if new_key else SigningKey.generate()
            event = signing_key_rotate(new_key=key, actor=Actor("user", actor, actor), reason=reason)
        except (KeyFileError, ValueError) as exc:  # an unreadable key, the key in use, a retired one
            self.stderr.write(str(exc))
            sys.exit(2)
        self.stdout.write(
            f"Rotated: key {event.payload['previous_key_id']} signed audit.KeyRotated at seq {event.seq}; "
            f"key {key.key_id} signs from seq {event.seq + 1}."
        )
