"""Signing in and out through the pages: passwords, lockout with its end time, the second
factor (enrolment, codes, its policy per role), and what it does to the API's other doors."""

from __future__ import annotations

import base64
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from audit.models import Event
from monitoring.access.second_factor import sign_in_policy_set
from tests.monitoring.conftest import ADMINISTRATOR, PASSWORD
from tests.web.conftest import code_of, signed_in

pytestmark = pytest.mark.django_db


def test_a_password_signs_in_and_returns_to_the_page_asked_for(people):
    client = Client()
    assert client.get("/log/")["Location"] == "/signin/?next=%2Flog%2F"
    answer = client.post("/signin/", {"username": "auditor_user", "password": PASSWORD, "next": "/log/"})
    assert answer.status_code == 302 and answer["Location"] == "/log/"
    assert client.get("/log/").status_code == 200


def test_a_wrong_password_says_so_and_signs_nobody_in(people):
    client = Client()
    answer = client.post("/signin/", {"username": "auditor_user", "password": "not-it"})
    assert answer.status_code == 401
    assert "do not match" in answer.content.decode()
    assert client.get("/")["Location"].startswith("/signin/")


def test_an_empty_form_is_refused(people):
    assert Client().post("/signin/", {"username": "", "password": ""}).status_code == 400


def test_next_never_leads_to_another_site(people):
    answer = Client().post(
        "/signin/", {"username": "auditor_user", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert answer["Location"] == "/"


def test_sign_out_ends_the_session_and_needs_a_post(people):
    client = signed_in(people["auditor"])
    assert client.get("/signout/").status_code == 405
    assert client.post("/signout/").status_code == 302
    assert client.get("/log/").status_code == 302


def test_lockout_is_a_page_that_says_until_when(people, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/signin/", {"username": "auditor_user", "password": "wrong"})
    answer = client.post("/signin/", {"username": "auditor_user", "password": PASSWORD})  # even the right one
    page = answer.content.decode()
    assert answer.status_code == 429
    assert int(answer["Retry-After"]) > 0
    assert "too many failed logins" in page.lower()
    assert re.search(r"try again at <time datetime=\"[^\"]+\">\d\d:\d\d UTC</time>", page)
    assert "text/html" in answer["Content-Type"]


def test_the_api_keeps_its_json_lockout(people, settings):
    client = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"auditor_user:wrong").decode())
        client.get("/api/v1/audit/events/")
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"auditor_user:{PASSWORD}".encode()).decode())
    answer = client.get("/api/v1/audit/events/")
    assert answer.status_code == 429 and "Retry-After" in answer


def _require_second_factor(*roles: str) -> None:
    sign_in_policy_set(roles=roles, actor=ADMINISTRATOR, reason="approvers and admins show a code")


def _enrol(user: User) -> TOTPDevice:
    client = Client()
    answer = client.post("/signin/", {"username": user.username, "password": PASSWORD})
    assert answer["Location"] == "/signin/enrol/"
    page = client.get("/signin/enrol/").content.decode()
    assert "<svg" in page and "totp-secret" in page
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    wrong = f"{(int(code_of(device)) + 1) % 1_000_000:06d}"
    assert client.post("/signin/enrol/", {"code": wrong}).status_code == 400
    answer = client.post("/signin/enrol/", {"code": code_of(device)})
    assert answer.status_code == 302, answer.content
    device.refresh_from_db()
    assert device.confirmed
    return device


def test_a_role_that_needs_a_second_factor_enrols_then_shows_codes(people):
    _require_second_factor("risk_approver")
    approver = people["risk_approver"]
    _enrol(approver)
    enrolled = Event.objects.filter(event_type="monitoring.SecondFactorEnrolled", stream_id=approver.username)
    assert enrolled.count() == 1
    assert "secret" not in bytes(enrolled.get().canonical).decode().lower()  # the secret stays with the account

    client = Client()
    answer = client.post("/signin/", {"username": approver.username, "password": PASSWORD})
    assert answer["Location"] == "/signin/code/"
    assert client.get("/").status_code == 302  # not signed in until the code
    device = TOTPDevice.objects.get(user=approver)
    assert client.post("/signin/code/", {"code": code_of(device, 1)}).status_code == 302
    assert client.get("/").status_code == 200


def test_a_code_is_accepted_once(people):
    _require_second_factor("risk_approver")
    device = _enrol(people["risk_approver"])
    code = code_of(device, 1)
    first, second = Client(), Client()
    for client in (first, second):
        client.post("/signin/", {"username": "risk_approver_user", "password": PASSWORD})
    assert first.post("/signin/code/", {"code": code}).status_code == 302
    assert second.post("/signin/code/", {"code": code}).status_code == 400


def test_wrong_codes_count_as_failed_sign_ins_and_end_the_attempt(people, settings):
    _require_second_factor("risk_approver")
    _enrol(people["risk_approver"])
    client = Client()
    client.post("/signin/", {"username": "risk_approver_user", "password": PASSWORD})
    for _ in range(settings.SECOND_FACTOR_MAX_TRIES - 1):
        answer = client.post("/signin/code/", {"code": "123456x"})
        assert answer.status_code == 400 and "left" in answer.content.decode()
    answer = client.post("/signin/code/", {"code": "000000"})
    assert answer.status_code in (302, 429)
    assert client.get("/signin/code/")["Location"] == "/signin/"  # the password must be shown again
    assert client.get("/").status_code == 302


def test_the_code_page_without_a_password_first_sends_back(people):
    assert Client().get("/signin/code/")["Location"] == "/signin/"


def test_a_session_from_before_the_policy_ends_when_the_role_comes_to_need_a_code(people):
    client = signed_in(people["admin"])
    assert client.get("/people/").status_code == 200
    _require_second_factor("admin")
    assert client.get("/people/")["Location"].startswith("/signin/")


def test_the_api_asks_the_same_roles_for_the_code(people):
    _require_second_factor("auditor")
    device = _enrol(people["auditor"])
    client = APIClient()
    basic = "Basic " + base64.b64encode(f"auditor_user:{PASSWORD}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=basic)
    refused = client.get("/api/v1/audit/events/")
    assert refused.status_code == 401 and "X-Second-Factor" in refused.json()["detail"]
    client.credentials(HTTP_AUTHORIZATION=basic, HTTP_X_SECOND_FACTOR=code_of(device, 1))
    assert client.get("/api/v1/audit/events/").status_code == 200


def test_a_token_issued_without_the_code_stops_when_the_role_comes_to_need_it(people):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"auditor_user:{PASSWORD}".encode()).decode())
    token = client.post("/api/v1/auth/token/").json()["token"]
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert bearer.get("/api/v1/audit/events/").status_code == 200
    _require_second_factor("auditor")
    assert bearer.get("/api/v1/audit/events/").status_code == 401


def test_the_deployment_floor_cannot_be_lowered_by_the_policy(people, settings):
    settings.OTP_REQUIRED_ROLES = ["admin"]
    client = Client()
    assert client.post("/signin/", {"username": "admin_user", "password": PASSWORD})["Location"] == "/signin/enrol/"


def test_an_unknown_floor_role_fails_the_system_check(settings):
    from monitoring.access.settings_check import check_second_factor_floor

    settings.OTP_REQUIRED_ROLES = ["approver"]
    assert [error.id for error in check_second_factor_floor()] == ["monitoring.E003"]


def test_a_person_changes_their_password_and_the_log_says_so(people):
    user = people["auditor"]
    client = signed_in(user)
    assert client.post("/password/", {"current": "nope", "new": "x", "again": "x"}).status_code == 400
    weak = client.post("/password/", {"current": PASSWORD, "new": "1234567890", "again": "1234567890"})
    assert weak.status_code == 400 and "numeric" in weak.content.decode()
    differ = client.post("/password/", {"current": PASSWORD, "new": "a-new-passphrase", "again": "another-one"})
    assert differ.status_code == 400
    assert (
        client.post(
            "/password/", {"current": PASSWORD, "new": "a-new-passphrase", "again": "a-new-passphrase"}
        ).status_code
        == 302
    )
    assert client.get("/").status_code == 200  # this session goes on
    assert Event.objects.filter(event_type="monitoring.PasswordChanged", stream_id=user.username).count() == 1
    assert Client().post("/signin/", {"username": user.username, "password": "a-new-passphrase"}).status_code == 302


def test_a_wrong_code_makes_the_device_wait_before_the_next(people, settings):
    _require_second_factor("risk_approver")
    device = _enrol(people["risk_approver"])
    settings.OTP_TOTP_THROTTLE_FACTOR = 1
    client = Client()
    client.post("/signin/", {"username": "risk_approver_user", "password": PASSWORD})
    assert client.post("/signin/code/", {"code": f"{(int(code_of(device, 1)) + 1) % 1_000_000:06d}"}).status_code == 400
    assert client.post("/signin/code/", {"code": code_of(device, 1)}).status_code == 400  # right, but too soon


def test_a_password_alone_cannot_swap_the_authenticator_at_the_enrolment_page(people):
    """Someone who knows an enrolled approver's password, not their phone: after the password,
    they skip the code page for the enrolment page. Enrolling there replaced the owner's
    authenticator with theirs and signed them in, verified: the second factor was no factor."""
    _require_second_factor("risk_approver")
    approver = people["risk_approver"]
    owners = _enrol(approver)
    intruder = Client()
    answer = intruder.post("/signin/", {"username": approver.username, "password": PASSWORD})
    assert answer["Location"] == "/signin/code/"
    page = intruder.get("/signin/enrol/")
    assert page.status_code == 403 and "totp-secret" not in page.content.decode()
    for device in TOTPDevice.objects.filter(user=approver, confirmed=False):  # what a secret shown would allow
        assert intruder.post("/signin/enrol/", {"code": code_of(device)}).status_code == 403
    assert intruder.post("/signin/enrol/", {"code": code_of(owners, 1)}).status_code == 403
    assert list(TOTPDevice.objects.filter(user=approver, confirmed=True).values_list("pk", flat=True)) == [owners.pk]
    assert intruder.get("/").status_code == 302  # not signed in
    assert Event.objects.filter(event_type="monitoring.SecondFactorEnrolled", stream_id=approver.username).count() == 1


def test_a_secret_shown_to_a_password_alone_is_never_the_owners_authenticator(people):
    """Before the approver enrols, someone who knows only their password opens the enrolment
    page, copies the secret and leaves. The owner's enrolment then showed that same secret:
    the intruder's copy was the owner's authenticator, for good, and nothing told anyone. Each
    enrolment now shows a secret of its own."""
    _require_second_factor("risk_approver")
    approver = people["risk_approver"]
    intruder = Client()
    assert intruder.post("/signin/", {"username": approver.username, "password": PASSWORD})["Location"] == (
        "/signin/enrol/"
    )
    assert intruder.get("/signin/enrol/").status_code == 200
    copied = TOTPDevice.objects.get(user=approver, confirmed=False).bin_key
    owners = _enrol(approver)
    assert owners.bin_key != copied
    assert intruder.post("/signin/enrol/", {"code": code_of(owners, 1)}).status_code == 403
    assert list(TOTPDevice.objects.filter(user=approver).values_list("pk", flat=True)) == [owners.pk]
