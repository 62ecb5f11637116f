"""The people commands: the first administrator, role grants, deactivation, and the one-time
recording of accounts made before roles were signed events."""

import io
import sys

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import Event
from monitoring.access.roles import roles_of

pytestmark = pytest.mark.django_db


def authenticate(*, username: str, password: str) -> bool:
    return (
        User.objects.get(username=username).check_password(password) and User.objects.get(username=username).is_active
    )


def _call(*args, stdin: str = "") -> str:
    out = io.StringIO()
    saved, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        call_command(*args, stdout=out)
    finally:
        sys.stdin = saved
    return out.getvalue()


def test_the_first_administrator_and_their_first_users():
    said = _call(
        "create_person", "ada", "--name", "Ada Admin", "--role", "admin", "--reason", "first admin",
        "--password-stdin", stdin="correct-horse-battery\n",
    )  # fmt: skip
    assert said == "Registered Ada Admin (ada) with admin.\n"
    ada = User.objects.get(username="ada")
    assert roles_of(ada) == {"admin"} and authenticate(username="ada", password="correct-horse-battery")
    registered = Event.objects.get(event_type="monitoring.PersonRegistered")
    assert registered.actor_id.startswith("cli:") and "correct-horse" not in bytes(registered.canonical).decode()
    _call(
        "create_person",
        "bob",
        "--name",
        "Bob Okafor",
        "--reason",
        "hired",
        "--password-stdin",
        stdin="another-long-pw\n",
    )
    _call("grant_role", "bob", "risk_approver", "--reason", "model risk")
    assert roles_of(User.objects.get(username="bob")) == {"risk_approver"}
    _call("deactivate_person", "bob", "--reason", "left")
    assert not authenticate(username="bob", password="another-long-pw")
    with pytest.raises(CommandError, match="password"):
        _call("create_person", "eve", "--name", "Eve", "--reason", "x", "--password-stdin", stdin="12345678901\n")
    with pytest.raises(CommandError, match="exists already"):
        _call(
            "create_person",
            "ada",
            "--name",
            "Ada",
            "--reason",
            "x",
            "--password-stdin",
            stdin="correct-horse-battery\n",
        )
    assert not User.objects.filter(username="eve").exists()


def test_accounts_made_before_signed_roles_are_recorded_once_then_survive_a_rebuild():
    legacy = User.objects.create_user("legacy", password="legacy-password-1", first_name="Lee", last_name="Gacy")
    legacy.groups.add(Group.objects.get(name="risk_approver"))
    assert "legacy" in _call("record_existing_people", "--reason", "upgrade to signed roles")
    kinds = list(Event.objects.filter(stream_id="legacy").values_list("event_type", flat=True))
    assert kinds == ["monitoring.PersonRegistered", "monitoring.RoleGranted"]
    assert "none" in _call("record_existing_people", "--reason", "again")  # once
    call_command("rebuild_projections", "monitoring.people", stdout=io.StringIO())
    assert roles_of(User.objects.get(username="legacy")) == {"risk_approver"}
    assert authenticate(username="legacy", password="legacy-password-1")  # the password is untouched


def test_create_person_refuses_an_address_that_is_no_email_and_records_nothing():
    """The API takes only an email address; the terminal must not sign another into the log."""
    with pytest.raises(CommandError, match="--email 'not-an-address' is not an email address"):
        _call(
            "create_person", "erin", "--name", "Erin", "--email", "not-an-address", "--reason", "hired",
            "--password-stdin", stdin="correct-horse-battery\n",
        )  # fmt: skip
    assert not User.objects.filter(username="erin").exists() and not Event.objects.exists()


def test_record_existing_people_refuses_at_once_what_it_could_not_record_and_records_nothing():
    """Django let accounts be named with any letter; the log's rule is ASCII. An account it cannot
    register, or a blank reason, is named before anything is recorded: no half-done upgrade."""
    User.objects.create_user("abel", password="legacy-password-1")
    User.objects.create_user("émile", password="legacy-password-2")
    with pytest.raises(CommandError, match="a reason is required"):
        _call("record_existing_people", "--reason", " ")
    with pytest.raises(CommandError, match=r"'émile'.*a username is 1 to 150 letters"):
        _call("record_existing_people", "--reason", "upgrade to signed roles")
    assert not Event.objects.exists()


@pytest.mark.parametrize("line_end", ["\n", "\r\n", ""])
def test_a_password_piped_in_is_the_line_without_its_ending_and_a_role_twice_is_said_once(line_end):
    said = _call(
        "create_person", "ada", "--name", "Ada Admin", "--role", "admin", "--role", "admin", "--reason", "first",
        "--password-stdin", stdin=f"correct-horse-battery{line_end}",
    )  # fmt: skip
    assert said == "Registered Ada Admin (ada) with admin.\n"
    assert authenticate(username="ada", password="correct-horse-battery")
