"""People's authentication under guessing: a lockout answers 429 with a JSON problem and
Retry-After; an address trying many usernames is throttled; the security log names the
username tried and the address, never the password; scripts trade a password for a
short-lived token that dies with the account or the password."""

from __future__ import annotations

import base64
import time

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.test import RequestFactory
from rest_framework.test import APIClient

from monitoring.access.authentication import lockout_response
from monitoring.access.services import person_deactivate
from tests.monitoring.conftest import ADMINISTRATOR, PASSWORD, client_for, person

pytestmark = pytest.mark.django_db


def _basic(username: str, password: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{username}:{password}".encode()).decode())
    return client


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_lockout_answers_429_with_a_json_problem_and_retry_after(settings):
    person("carol", "auditor")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert _basic("carol", "guess").get("/api/v1/models/").status_code == 401
    answer = _basic("carol", PASSWORD).get("/api/v1/models/")
    assert answer.status_code == 429
    assert (
        answer.json()["detail"]
        == "too many failed logins for 'carol' from 127.0.0.1: try again in 15 minutes (Retry-After)"
    )
    assert 0 < int(answer["Retry-After"]) <= 15 * 60


def test_an_address_trying_many_usernames_is_throttled_and_other_addresses_are_not(settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 6
    person("dave", "auditor")
    for username in ("root", "admin", "alice"):  # two guesses each: no single username reaches its limit
        for _ in range(2):
            assert _basic(username, "Winter2026!").get("/api/v1/models/", REMOTE_ADDR="203.0.113.9").status_code == 401
    refused = _basic("dave", PASSWORD).get("/api/v1/models/", REMOTE_ADDR="203.0.113.9")
    assert refused.status_code == 429 and "from 203.0.113.9, across usernames" in refused.json()["detail"]
    assert int(refused["Retry-After"]) > 0
    assert _basic("dave", PASSWORD).get("/api/v1/models/", REMOTE_ADDR="198.51.100.4").status_code == 200


def test_the_security_log_names_the_username_tried_and_the_address_never_the_password(caplog):
    person("erin", "auditor")
    _basic("erin", "not-my-Secret-42").get("/api/v1/models/", REMOTE_ADDR="192.0.2.7")
    failures = [r.getMessage() for r in caplog.records if r.name == "driftledger.security"]
    assert any("from 192.0.2.7 as 'erin'" in line for line in failures), failures
    assert not any("not-my-Secret-42" in r.getMessage() for r in caplog.records)


def test_a_login_refused_outside_the_api_gets_the_same_json_answer(settings):
    person("frank", "auditor")
    request = RequestFactory().post("/login/", REMOTE_ADDR="192.0.2.8")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert authenticate(request=request, username="frank", password="guess") is None
    request = RequestFactory().post("/login/", REMOTE_ADDR="192.0.2.8")
    assert authenticate(request=request, username="frank", password=PASSWORD) is None  # locked: even the right one
    assert request.axes_locked_out
    answer = lockout_response(request, None, {"username": "frank"})
    assert answer.status_code == 429 and int(answer["Retry-After"]) > 0
    assert answer["Content-Type"] == "application/problem+json"
    assert b"too many failed logins for 'frank'" in answer.content


def test_a_token_is_traded_once_for_the_password_and_works_until_it_expires(settings):
    person("gina", "ml_engineer")
    issued = _basic("gina", PASSWORD).post("/api/v1/auth/token/")
    assert issued.status_code == 201, issued.content
    token = issued.json()["token"]
    assert "gina" not in token or "." in token  # signed, not a bare name
    assert _bearer(token).get("/api/v1/models/").status_code == 200
    assert _bearer(token[:-2] + "xx").get("/api/v1/models/").json()["detail"] == "token invalid"
    assert _bearer(token).post("/api/v1/auth/token/").status_code == 403  # no renewing a token with itself
    settings.API_TOKEN_SECONDS = 1
    time.sleep(2.1)
    expired = _bearer(token).get("/api/v1/models/")
    assert expired.status_code == 401 and "token expired" in expired.json()["detail"]


def test_a_token_dies_with_a_new_password_or_a_deactivation():
    person("hal", "ml_engineer")
    token = _basic("hal", PASSWORD).post("/api/v1/auth/token/").json()["token"]
    user = User.objects.get(username="hal")
    user.set_password("another-long-passphrase")
    user.save()
    assert _bearer(token).get("/api/v1/models/").status_code == 401
    token = _basic("hal", "another-long-passphrase").post("/api/v1/auth/token/").json()["token"]
    assert _bearer(token).get("/api/v1/models/").status_code == 200
    person_deactivate(username="hal", actor=ADMINISTRATOR, reason="left the company")
    answer = _bearer(token).get("/api/v1/models/")
    assert answer.status_code == 401 and "no longer valid" in answer.json()["detail"]


def test_a_model_key_gets_no_token(credit_key):
    assert client_for(key=credit_key).post("/api/v1/auth/token/").status_code == 403


@pytest.mark.parametrize("username", ["ad\x00min", "x" * 300])
def test_an_impossible_username_is_refused_like_any_wrong_one(username):
    answer = _basic(username, "whatever").get("/api/v1/models/")
    assert answer.status_code == 401 and answer.json()["detail"] == "Invalid username/password."
    assert authenticate(request=RequestFactory().post("/login/"), username=username, password="x") is None
