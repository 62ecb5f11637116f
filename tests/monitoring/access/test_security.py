"""Password guessing is locked out, and failures and refusals are logged."""

import base64

import pytest
from rest_framework.test import APIClient

from tests.monitoring.conftest import person

pytestmark = pytest.mark.django_db


def _basic(username: str, password: str) -> APIClient:
    client = APIClient()
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {token}")
    return client


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_after_five_wrong_passwords_even_the_right_one_is_refused(settings, caplog):
    person("carol", "auditor")
    assert _basic("carol", "s3cret-pass").get("/api/v1/models/").status_code == 200
    for _ in range(settings.AXES_FAILURE_LIMIT):
        assert _basic("carol", "guess").get("/api/v1/models/").status_code == 401
    assert _basic("carol", "s3cret-pass").get("/api/v1/models/").status_code in (401, 403, 429)
    assert any("authentication failed" in r.getMessage() for r in caplog.records)


def test_someone_elses_lockout_does_not_lock_you_out(settings):
    person("carol", "auditor")
    person("dave", "auditor")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _basic("carol", "guess").get("/api/v1/models/")
    assert _basic("dave", "s3cret-pass").get("/api/v1/models/").status_code == 200


def test_refusals_are_logged_with_who_and_what(caplog):
    person("erin", "auditor")
    answer = _basic("erin", "s3cret-pass").post("/api/v1/models/", {"name": "x"}, format="json")
    assert answer.status_code == 403
    assert any("refused POST /api/v1/models/ to erin" in r.getMessage() for r in caplog.records)
