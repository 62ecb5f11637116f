"""Every monitoring endpoint against every role, the model's own key, another model's key, a
person with no role and nobody at all: allowed ones get past authorization, the rest are
refused (401 without credentials, 403 otherwise). The matrix is docs/permissions.md."""

import orjson
import pytest

from monitoring.registry import services as registry
from tests.monitoring.conftest import ALICE, ROLES, SCHEMA, client_for

pytestmark = pytest.mark.django_db

NONE = "6f1c3a52-0000-4000-8000-000000000000"
READ = {"ml_engineer", "risk_approver", "compliance_officer", "auditor", "admin"}
ENGINEER = {"ml_engineer", "admin"}
ROW = {"id": "p-1", "timestamp": "2026-01-01T00:00:00Z", "income": 1.0, "debt_ratio": 0.1, "region": "n", "score": 0.5}

ENDPOINTS = [
    ("get", "/api/v1/models/", None, READ),
    ("post", "/api/v1/models/", {"name": "m2", "task": "regression", "data_schema": SCHEMA}, ENGINEER),
    ("get", "/api/v1/models/credit/", None, READ),
    ("patch", "/api/v1/models/credit/", {"description": "d", "reason": "r"}, ENGINEER),
    ("post", "/api/v1/models/credit/retire/", {"reason": "r"}, ENGINEER),
    ("get", "/api/v1/models/credit/versions/", None, READ),
    ("post", "/api/v1/models/credit/versions/", {"version": "2", "artifact_uri": "s3://2"}, ENGINEER),
    ("post", "/api/v1/models/credit/versions/1.1/retire/", {"reason": "r"}, ENGINEER),
    ("get", "/api/v1/models/credit/deployment/", None, READ | {"key"}),
    ("post", "/api/v1/models/credit/deployment/", {"action": "promote", "version": "1.1", "reason": "r"}, ENGINEER),
    ("get", "/api/v1/models/credit/keys/", None, ENGINEER),
    ("post", "/api/v1/models/credit/keys/", {"label": "x"}, ENGINEER),
    ("post", "/api/v1/models/credit/keys/{key_id}/revoke/", {"reason": "r"}, ENGINEER),
    ("post", "/api/v1/models/credit/predictions/", [ROW], ENGINEER | {"key"}),
    ("post", "/api/v1/models/credit/reference/", [ROW], ENGINEER | {"key"}),
    ("post", "/api/v1/models/credit/labels/", [{"id": "p-1", "defaulted": 1}], ENGINEER | {"key"}),
    (
        "post",
        "/api/v1/models/credit/kpis/",
        [{"timestamp": "2026-01-01T00:00:00Z", "kpi": "ctr", "value": 0.1}],
        ENGINEER | {"key"},
    ),
    ("get", "/api/v1/models/credit/batches/", None, READ),
    ("get", "/api/v1/models/credit/policies/", None, READ),
    ("put", "/api/v1/models/credit/policies/", {"policy": {"window": {"hours": 6}}, "reason": "r"}, ENGINEER),
    ("get", "/api/v1/models/credit/runs/", None, READ),
    ("post", "/api/v1/models/credit/runs/", {}, ENGINEER),
    ("get", "/api/v1/runs/6f1c3a52-0000-4000-8000-000000000000/", None, READ),
    ("get", "/api/v1/alerts/", None, READ),
    ("get", "/api/v1/alerts/6f1c3a52-0000-4000-8000-000000000000/", None, READ),
    ("post", "/api/v1/alerts/6f1c3a52-0000-4000-8000-000000000000/acknowledge/", None, READ),
    ("post", "/api/v1/alerts/6f1c3a52-0000-4000-8000-000000000000/resolve/", {"reason": "r"}, ENGINEER),
    ("post", "/api/v1/alerts/6f1c3a52-0000-4000-8000-000000000000/silence/", {"reason": "r"}, ENGINEER),
    ("get", "/api/v1/remediations/", None, READ),
    (
        "post",
        "/api/v1/remediations/",
        {"model": "credit", "kind": "canary_stop", "reason": "r"},
        ENGINEER | {"risk_approver"},
    ),
    ("get", f"/api/v1/remediations/{NONE}/", None, READ),
    ("post", f"/api/v1/remediations/{NONE}/approve/", {"password": "p", "reason": "r"}, {"risk_approver"}),
    ("post", f"/api/v1/remediations/{NONE}/reject/", {"password": "p", "reason": "r"}, {"risk_approver"}),
    ("post", f"/api/v1/remediations/{NONE}/review/", {"password": "p", "reason": "r"}, {"risk_approver"}),
    ("post", f"/api/v1/remediations/{NONE}/cancel/", {"reason": "r"}, READ),
    ("post", f"/api/v1/remediations/{NONE}/retry/", None, ENGINEER),
    ("post", f"/api/v1/remediations/{NONE}/abandon/", {"reason": "r"}, ENGINEER),
]
PRINCIPALS = (*ROLES, "nobody", "anonymous", "key", "other_key")


@pytest.mark.parametrize(("method", "url", "body", "allowed"), ENDPOINTS, ids=[f"{m} {u}" for m, u, *_ in ENDPOINTS])
def test_each_principal_is_allowed_or_refused(method, url, body, allowed, credit_model, credit_key, people):
    registry.model_register(name="other", task="regression", owner="a", data_schema=SCHEMA, actor=ALICE)
    other_key = registry.api_key_issue(name="other", label="svc", expires_at=None, actor=ALICE)[1]
    key_id = registry.api_key_issue(name="credit", label="spare", expires_at=None, actor=ALICE)[0]
    for principal in PRINCIPALS:
        if principal == "key":
            client = client_for(key=credit_key)
        elif principal == "other_key":
            client = client_for(key=other_key)
        elif principal == "anonymous":
            client = client_for()
        else:
            client = client_for(people[principal])
        target = url.format(key_id=key_id)
        if (
            body is not None
            and method == "post"
            and "/models/credit/" in url
            and url.endswith(("predictions/", "reference/", "labels/", "kpis/"))
        ):
            answer = client.post(target, orjson.dumps(body), content_type="application/json")
        else:
            answer = getattr(client, method)(target, body, format="json")
        if principal in allowed:
            assert answer.status_code not in (401, 403), (principal, answer.status_code, answer.content)
        elif principal == "anonymous":
            assert answer.status_code == 401, (principal, answer.status_code)
        else:
            assert answer.status_code == 403, (principal, answer.status_code, answer.content)
