"""Request bodies and paths no serializer sees: a JSON body nested past what the parser reads, a
string holding a lone surrogate, a NUL in the path. Each is a precise 400, never a 500, and
nothing is stored."""

from __future__ import annotations

import pytest

from tests.monitoring.conftest import client_for
from tests.monitoring.hostile.conftest import stored

pytestmark = pytest.mark.django_db

WRITES = [
    ("ml_engineer", "/api/v1/models/"),
    ("ml_engineer", "/api/v1/models/credit/versions/"),
    ("ml_engineer", "/api/v1/remediations/"),
    ("auditor", "/api/v1/evidence/"),
    ("admin", "/api/v1/users/"),
]


def _client(people, role: str):
    client = client_for(people[role])
    client.raise_request_exception = False  # answer as the server would: a 500, not a raised error
    return client


@pytest.mark.parametrize(("role", "url"), WRITES)
def test_a_body_nested_past_the_parsers_depth_is_a_400(people, credit_model, role, url):
    before = stored()
    answer = _client(people, role).post(url, "[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert answer.status_code == 400, answer.content[:200]
    assert "nested" in answer.json()["detail"]
    assert stored() == before


@pytest.mark.parametrize(
    ("role", "url", "body"),
    [
        ("ml_engineer", "/api/v1/models/", '{"name": "m", "task": "\\ud800", "data_schema": {}}'),
        ("ml_engineer", "/api/v1/models/credit/deployment/", '{"action": "\\udfff", "reason": "r"}'),
        ("ml_engineer", "/api/v1/remediations/", '{"model": "credit", "kind": "\\ud800", "reason": "r"}'),
        ("admin", "/api/v1/users/nobody_user/roles/", '{"role": "\\ud800", "reason": "r"}'),
    ],
)
def test_a_lone_surrogate_in_a_string_is_a_400(people, credit_model, role, url, body):
    """A choice refused echoes the value it was given; a lone surrogate cannot be written as
    UTF-8, so the answer itself failed. Such a string is no Unicode text: the body is refused."""
    before = stored()
    answer = _client(people, role).post(url, body, content_type="application/json")
    assert answer.status_code == 400, answer.content[:200]
    assert "lone surrogate" in answer.json()["detail"]
    assert stored() == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/models/%00/",
        "/api/v1/models/cr%00edit/versions/",
        "/api/v1/users/%00/",
        "/api/v1/models/credit/keys/%00/revoke/",
    ],
)
def test_a_nul_in_the_path_is_a_400(people, credit_model, path):
    """PostgreSQL cannot hold a NUL in text: looked up, the name was a database error."""
    client = _client(people, "admin")
    before = stored()
    for answer in (client.get(path), client.post(path, {"reason": "r"}, format="json")):
        assert answer.status_code == 400, answer.content[:200]
        assert "NUL character" in answer.json()["detail"]
    assert stored() == before
