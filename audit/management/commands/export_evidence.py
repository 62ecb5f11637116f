import datetime as dt
import getpass
import sys
from pathlib import Path

from django.core.management.base import BaseCommand

from audit.evidence import EvidenceError, EvidenceQuery, evidence_export, parse_stream, query_problem, scopes
from audit.store import Actor


def parse_time(text: str) -> dt.datetime:
    """ISO 8601; a date or a time without zone is taken as UTC."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = "Export a signed evidence bundle (zip) that auditors verify offline with python -m audit.verifier."

    def add_arguments(self, parser):
        parser.add_argument("--out", type=Path, required=True, help="the zip file to write (never overwritten)")
        for scope in scopes():  # registered by the domain apps, e.g. --model
            parser.add_argument(f"--{scope.name}", help=scope.help)
        parser.add_argument("--since", help="ISO 8601 time (a date or zoneless time is UTC)")
        parser.add_argument("--until", help="ISO 8601 time (a date or zoneless time is UTC)")
        parser.add_argument("--stream", action="append", default=[], help="TYPE:ID (repeatable)")
        parser.add_argument("--include-data", action="store_true", help="add the data files events reference")
        parser.add_argument(
            "--created-by", default=getpass.getuser(), help="who exports (manifest and audit event); default: OS user"
        )

    def handle(self, *args, **options):
        try:
            query = EvidenceQuery(
                scopes=tuple((scope.name, options[scope.name]) for scope in scopes() if options[scope.name]),
                since=parse_time(options["since"]) if options["since"] else None,
                until=parse_time(options["until"]) if options["until"] else None,
                streams=tuple(parse_stream(s) for s in options["stream"]),
                include_data=options["include_data"],
            )
            query_problem(query)
            if options["out"].is_dir():
                raise EvidenceError(f"--out {options['out']} is a folder: name the zip file to write")
            if options["out"].exists() or options["out"].is_symlink():  # the log names that bundle's SHA-256
                raise EvidenceError(f"--out {options['out']} exists: an evidence bundle is never overwritten")
            if not options["created_by"].strip():
                raise EvidenceError("--created-by must name who exports: the log records it")
        except (ValueError, EvidenceError) as exc:
            self.stderr.write(f"invalid argument: {exc}")
            sys.exit(2)
        try:
            who = options["created_by"]
            summary = evidence_export(
                query=query, out=options["out"], created_by=Actor("user", who, who), overwrite=False
            )
        except EvidenceError as exc:
            self.stderr.write(str(exc))
            sys.exit(1)
        missing = f"; {len(summary.missing_data)} referenced data file(s) not found" if summary.missing_data else ""
        self.stdout.write(
            f"Wrote {summary.path}: {summary.events} events, checkpoint of tree size {summary.tree_size}, "
            f"{summary.data_files} data file(s){missing}. SHA-256 {summary.sha256}"
        )
