import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from django.core.management.base import BaseCommand

from audit.keys import public_key_from_raw
from audit.selectors import signing_keys


class Command(BaseCommand):
    help = "List the log's signing keys with the seq ranges they sign; optionally write their public PEMs."

    def add_arguments(self, parser):
        parser.add_argument("--pem-dir", type=Path, help="write <key_id>.pem public keys here (for auditors)")

    def handle(self, *args, pem_dir=None, **options):
        if pem_dir is not None and pem_dir.exists() and not pem_dir.is_dir():
            self.stderr.write(f"--pem-dir {pem_dir} is a file, not a directory")
            sys.exit(2)
        keys = signing_keys()
        if not keys:
            self.stdout.write("The log has no signing key yet (it is empty).")
        for key in keys:
            until = key.valid_to_seq if key.valid_to_seq is not None else "now"
            self.stdout.write(f"{key.key_id}  seq {key.valid_from_seq}..{until}")
        if pem_dir and keys:
            try:
                self._write_pems(pem_dir, keys)
            except OSError as exc:  # a directory it may not make or write in: said in one line
                self.stderr.write(f"cannot write the public keys to {pem_dir}: {exc.strerror or exc}")
                sys.exit(1)
            self.stdout.write(f"Wrote {len(keys)} public key(s) to {pem_dir}/<key id>.pem")

    def _write_pems(self, pem_dir: Path, keys) -> None:
        pem_dir.mkdir(parents=True, exist_ok=True)
        for key in keys:
            pem = public_key_from_raw(key.public_raw).public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            (pem_dir / f"{key.key_id}.pem").write_bytes(pem)
