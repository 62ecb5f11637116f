"""What the people commands share: who acts from a terminal, and how a password is read."""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import CommandError

from audit.store import Actor


def operator() -> Actor:
    """The person at the terminal, as the log records them (there may be no account yet)."""
    name = getpass.getuser()
    return Actor("user", f"cli:{name}", f"{name} (command line)")


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")  # a line ending of Windows' is no part of it
    if not sys.stdin.isatty():
        raise CommandError("no terminal to ask the password on: pass --password-stdin and pipe it in")
    first, second = getpass.getpass("Password: "), getpass.getpass("Password (again): ")
    if first != second:
        raise CommandError("the passwords differ")
    return first
