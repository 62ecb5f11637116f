"""The people pages, for administrators: every change takes a reason and is a signed event;
refusals of the domain are shown and write nothing."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import Event
from monitoring.access.second_factor import second_factor_roles
from tests.monitoring.conftest import PASSWORD
from tests.web.conftest import code_of, signed_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["auditor", "compliance_officer", "ml_engineer", "risk_approver"])
def test_people_pages_are_for_admins_only(people, role):
    client = signed_in(people[role])
    assert client.get("/people/").status_code == 403
    assert (
        client.post(
            "/people/", {"username": "x", "full_name": "X", "password": "a-long-passphrase", "reason": "r"}
        ).status_code
        == 403
    )
    assert not User.objects.filter(username="x").exists()
    assert 'href="/people/"' not in client.get("/").content.decode()


def test_an_admin_registers_a_person_with_roles_signed_in_the_log(people):
    client = signed_in(people["admin"])
    before = Event.objects.count()
    answer = client.post(
        "/people/",
        {
            "username": "zoe",
            "full_name": "Zoe Ng",
            "email": "zoe@example.org",
            "password": "a-long-passphrase",
            "roles": ["auditor"],
            "reason": "new auditor",
        },
    )
    assert answer.status_code == 302 and answer["Location"] == "/people/zoe/"
    kinds = list(Event.objects.filter(seq__gt=before).values_list("event_type", flat=True))
    assert kinds == ["monitoring.PersonRegistered", "monitoring.RoleGranted"]
    assert Event.objects.filter(seq__gt=before, actor_id="admin_user").count() == 2
    assert Client().post("/signin/", {"username": "zoe", "password": "a-long-passphrase"}).status_code == 302


def test_refusals_are_shown_and_write_nothing(people):
    client = signed_in(people["admin"])
    before = Event.objects.count()
    cases = [
        {"username": "zoe", "full_name": "Zoe", "password": "a-long-passphrase", "reason": ""},  # no reason
        {"username": "zoe", "full_name": "Zoe", "password": "short", "reason": "r"},  # weak password
        {"username": "auditor_user", "full_name": "A", "password": "a-long-passphrase", "reason": "r"},  # exists
        {"username": "bad name!", "full_name": "B", "password": "a-long-passphrase", "reason": "r"},
        # Whoever chose the first password gives no power: another administrator does.
        {
            "username": "zoe",
            "full_name": "Zoe",
            "password": "a-long-passphrase",
            "roles": ["risk_approver"],
            "reason": "r",
        },
    ]
    for fields in cases:
        answer = client.post("/people/", fields)
        assert answer.status_code == 400, fields
        assert 'class="message error"' in answer.content.decode()
    assert Event.objects.count() == before
    assert not User.objects.filter(username="zoe").exists()


def test_grant_revoke_deactivate_and_reactivate_with_reasons(people):
    client = signed_in(people["admin"])
    url = "/people/auditor_user/"
    assert (
        client.post(url, {"action": "grant", "role": "compliance_officer", "reason": "covers for olga"}).status_code
        == 302
    )
    assert people["auditor"].groups.filter(name="compliance_officer").exists()
    assert (
        client.post(url, {"action": "revoke", "role": "compliance_officer", "reason": "olga is back"}).status_code
        == 302
    )
    assert not people["auditor"].groups.filter(name="compliance_officer").exists()
    auditor = signed_in(people["auditor"])
    assert client.post(url, {"action": "deactivate", "reason": "left the company"}).status_code == 302
    assert auditor.get("/log/").status_code == 302  # their session no longer counts
    assert Client().post("/signin/", {"username": "auditor_user", "password": PASSWORD}).status_code == 401
    assert client.post(url, {"action": "reactivate", "reason": "rehired"}).status_code == 302
    kinds = list(
        Event.objects.filter(stream_type="person", stream_id="auditor_user").values_list("event_type", flat=True)
    )
    assert kinds[-4:] == [
        "monitoring.RoleGranted",
        "monitoring.RoleRevoked",
        "monitoring.PersonDeactivated",
        "monitoring.PersonReactivated",
    ]
    reasons = [
        json.loads(bytes(e.canonical))["reason"] for e in Event.objects.filter(stream_id="auditor_user").order_by("seq")
    ][-4:]
    assert reasons == ["covers for olga", "olga is back", "left the company", "rehired"]


def test_no_admin_changes_their_own_roles_or_status(people):
    client = signed_in(people["admin"])
    before = Event.objects.count()
    assert (
        client.post("/people/admin_user/", {"action": "grant", "role": "risk_approver", "reason": "r"}).status_code
        == 400
    )
    assert client.post("/people/admin_user/", {"action": "deactivate", "reason": "r"}).status_code == 400
    assert (
        client.post("/people/admin_user/", {"action": "grant", "role": "risk_approver", "reason": ""}).status_code
        == 400
    )
    assert (
        client.post("/people/auditor_user/", {"action": "grant", "role": "auditor", "reason": "twice"}).status_code
        == 400
    )
    assert client.post("/people/auditor_user/", {"action": "explode", "reason": "r"}).status_code == 400
    assert Event.objects.count() == before
    assert client.get("/people/ghost/").status_code == 404


def test_an_admin_sets_the_sign_in_policy_and_resets_a_lost_second_factor(people):
    admin = signed_in(people["admin"])
    assert admin.post("/people/policy/", {"roles": ["risk_approver"], "reason": ""}).status_code == 400
    assert (
        admin.post("/people/policy/", {"roles": ["risk_approver"], "reason": "four eyes, two factors"}).status_code
        == 302
    )
    assert {role.value for role in second_factor_roles()} == {"risk_approver"}
    assert admin.post("/people/policy/", {"roles": ["wizard"], "reason": "r"}).status_code == 400

    approver = Client()
    assert (
        approver.post("/signin/", {"username": "risk_approver_user", "password": PASSWORD})["Location"]
        == "/signin/enrol/"
    )
    approver.get("/signin/enrol/")
    device = TOTPDevice.objects.get(user=people["risk_approver"])
    assert approver.post("/signin/enrol/", {"code": code_of(device)}).status_code == 302

    assert admin.post("/people/risk_approver_user/", {"action": "reset_second_factor", "reason": ""}).status_code == 400
    assert TOTPDevice.objects.filter(user=people["risk_approver"]).exists()
    assert (
        admin.post(
            "/people/risk_approver_user/", {"action": "reset_second_factor", "reason": "lost phone, identity checked"}
        ).status_code
        == 302
    )
    assert not TOTPDevice.objects.filter(user=people["risk_approver"]).exists()
    assert Event.objects.filter(event_type="monitoring.SecondFactorReset", stream_id="risk_approver_user").exists()
    again = Client().post("/signin/", {"username": "risk_approver_user", "password": PASSWORD})
    assert again["Location"] == "/signin/enrol/"
