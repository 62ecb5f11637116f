"""Every cell of the permission table, and the table against its page.

The rows come from the declarations the views enforce (monitoring.access.table); each endpoint
is called as each principal: each role, a person with two roles, a person with no role, a Django
superuser with no role, a deactivated person, the model's own key, another model's key, nobody.
Allowed callers get past authorization (whatever the view then answers); the others get 401
without credentials and 403 otherwise."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import Event
from monitoring.access.domain import Role
from monitoring.access.passwords import password_change
from monitoring.access.services import person_deactivate
from monitoring.access.table import Row, permission_rows
from monitoring.registry import services as registry
from tests.monitoring.conftest import ADMINISTRATOR, ALICE, SCHEMA, client_for, person

pytestmark = pytest.mark.django_db

NONE = "6f1c3a52-0000-4000-8000-000000000000"
ROWS = permission_rows()
# Principals beyond the single roles, and the row principal whose cell they must match.
EXTRA = {
    "engineer_and_approver": ("ml_engineer", "risk_approver"),
    "nobody": (),
    "superuser": (),
    "deactivated": (),
}


def _url(row: Row, key_id: str) -> str:
    values = {
        "name": "credit",
        "version": "1.1",
        "key_id": key_id,
        "run_id": NONE,
        "alert_id": NONE,
        "request_id": NONE,
        "export_id": NONE,
        "tree_size": "1",
        "seq": "1",
        "username": "someone",
        "role": "auditor",
    }
    return "/api/v1/" + row.path.format(**values)


def _admitted(row: Row, principal: str) -> bool:
    if principal in ("key", "other_key"):
        return row.who.anyone or (row.who.model_key and principal == "key")
    if principal == "anonymous":
        return row.who.anyone
    roles = EXTRA.get(principal, (principal,))
    return row.who.anyone or any(role in row.who.roles for role in roles)


@pytest.fixture
def principals(credit_model, credit_key):
    registry.model_register(name="other", task="regression", owner="a", data_schema=SCHEMA, actor=ALICE)
    other_key = registry.api_key_issue(name="other", label="svc", expires_at=None, actor=ALICE)[1]
    key_id = registry.api_key_issue(name="credit", label="spare", expires_at=None, actor=ALICE)[0]
    clients = {role.value: client_for(person(f"{role.value}_user", role.value)) for role in Role}
    clients["engineer_and_approver"] = client_for(person("both", "ml_engineer", "risk_approver"))
    clients["nobody"] = client_for(person("nobody"))
    clients["superuser"] = client_for(User.objects.create_superuser("root", password="s3cret-pass-root"))
    gone = person("gone", "ml_engineer", "risk_approver", "admin")
    person_deactivate(username="gone", actor=ADMINISTRATOR, reason="left")
    clients["deactivated"] = client_for(User.objects.get(pk=gone.pk))
    clients["anonymous"] = client_for()
    clients["key"] = client_for(key=credit_key)
    clients["other_key"] = client_for(key=other_key)
    person("someone", "auditor")
    return clients, key_id


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.method} {r.path}" for r in ROWS])
def test_each_principal_is_let_through_or_refused_as_declared(row, principals):
    clients, key_id = principals
    for principal, client in clients.items():
        answer = getattr(client, row.method.lower())(_url(row, key_id), {}, format="json")
        if _admitted(row, principal):
            if row.who.anyone and row.who.note:  # a shared secret the view checks: never a role refusal
                assert answer.status_code != 403, (principal, answer.status_code)
            else:
                assert answer.status_code not in (401, 403), (principal, answer.status_code, answer.content[:200])
        elif principal == "anonymous":
            assert answer.status_code == 401, (principal, answer.status_code)
        else:
            assert answer.status_code == 403, (principal, answer.status_code, answer.content[:200])


def test_every_route_declares_who_may_call_it_and_the_page_says_the_same():
    assert {row.path for row in ROWS} >= {"models/{name}/deployment/", "users/", "remediations/{request_id}/approve/"}
    out = io.StringIO()
    call_command("permissions_table", "--check", stdout=out)
    assert "up to date" in out.getvalue()


def test_a_superuser_without_a_role_neither_approves_nor_changes_production(principals):
    clients, _ = principals
    root = clients["superuser"]
    assert root.post(f"/api/v1/remediations/{NONE}/approve/", {"password": "x", "reason": "r"}).status_code == 403
    body = {"action": "promote", "version": "1.1", "reason": "r"}
    assert root.post("/api/v1/models/credit/deployment/", body, format="json").status_code == 403
    assert root.get("/api/v1/users/").status_code == 403  # nor manages people: roles are all there is


def test_people_changes_are_signed_events_and_nobody_grants_themselves_a_role(principals):
    clients, _ = principals
    admin = clients["admin"]
    carol = {"username": "carol", "full_name": "Carol Chen", "password": "long-enough-pw-1", "reason": "approver"}
    # Whoever chose her first password could act as her: her registrar never gives her power.
    refused = admin.post("/api/v1/users/", {**carol, "roles": ["risk_approver"]}, format="json")
    assert refused.status_code == 400 and "another administrator" in refused.json()["detail"]
    assert not User.objects.filter(username="carol").exists()  # nothing half-written
    created = admin.post("/api/v1/users/", {**carol, "roles": ["auditor"]}, format="json")
    assert created.status_code == 201 and created.json()["roles"] == ["auditor"]
    for power in ("risk_approver", "ml_engineer", "admin"):
        again = admin.post("/api/v1/users/carol/roles/", {"role": power, "reason": "r"}, format="json")
        assert again.status_code == 400 and "another administrator" in again.json()["detail"]
    other_admin = client_for(person("other_admin", "admin"))
    # Nor while she signs in with the password her registrar chose: she sets her own first.
    early = other_admin.post("/api/v1/users/carol/roles/", {"role": "risk_approver", "reason": "r"}, format="json")
    assert early.status_code == 400 and "set their own first" in early.json()["detail"]
    password_change(user=User.objects.get(username="carol"), new_password="carols-own-passphrase")
    granted = other_admin.post("/api/v1/users/carol/roles/", {"role": "risk_approver", "reason": "r"}, format="json")
    assert granted.status_code == 200 and sorted(granted.json()["roles"]) == ["auditor", "risk_approver"]
    own = admin.post("/api/v1/users/admin_user/roles/", {"role": "risk_approver", "reason": "me"}, format="json")
    assert own.status_code == 400 and "their own roles" in own.json()["detail"]
    short = admin.post(
        "/api/v1/users/", {"username": "dan", "full_name": "Dan", "password": "short", "reason": "r"}, format="json"
    )
    assert short.status_code == 400 and "password" in short.json()["detail"]
    revoked = admin.post("/api/v1/users/carol/roles/risk_approver/revoke/", {"reason": "moved"}, format="json")
    assert revoked.json()["roles"] == ["auditor"]  # taking power away needs no second administrator
    kinds = list(Event.objects.filter(stream_type="person", stream_id="carol").values_list("event_type", "actor_id"))
    assert kinds == [
        ("monitoring.PersonRegistered", "admin_user"),
        ("monitoring.RoleGranted", "admin_user"),
        ("monitoring.PasswordChanged", "carol"),
        ("monitoring.RoleGranted", "other_admin"),
        ("monitoring.RoleRevoked", "admin_user"),
    ]


def test_permissions_table_names_a_doc_it_cannot_read(tmp_path):
    for doc in (tmp_path / "missing.md", tmp_path):
        with pytest.raises(CommandError, match=f"cannot read {doc}: "):
            call_command("permissions_table", "--check", "--doc", str(doc), stdout=io.StringIO())
