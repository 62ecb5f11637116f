"""The four-eyes remediation workflow over the API, on the real database."""

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from audit.models import Event
from audit.store import Actor
from monitoring.access.services import person_deactivate, person_reactivate, role_revoke
from monitoring.alerting.notifiers import webhook_signature
from monitoring.alerting.services import alerts_from_run
from monitoring.models import Alert, Deployment, Remediation
from monitoring.policies.services import policy_load
from monitoring.registry import services as registry
from monitoring.remediation.services import break_glass_overdue, remediation_execute, remediations_expire
from monitoring.runs.domain import Check
from tests.monitoring.conftest import ADMINISTRATOR, ALICE, SCHEMA, approved, client_for, person

pytestmark = pytest.mark.django_db
PASSWORD = "s3cret-pass"


@pytest.fixture
def served(credit_model):
    """1.0 served first, 1.1 is the champion now (promoted with approval): 1.0 is a rollback target."""
    approved("credit", "promote_challenger", {"version": "1.1"}, reason="release")
    return "credit"


def _request(client, kind="rollback", parameters=None, **extra):
    body = {
        "model": "credit",
        "kind": kind,
        "parameters": parameters or {"to_version": "1.0"},
        "reason": "AUC fell",
        **({"password": PASSWORD} if extra.get("break_glass") else {}),
        **extra,
    }
    return client.post("/api/v1/remediations/", body, format="json")


def _decide(client, request_id, decision="approve", password=PASSWORD):
    return client.post(f"/api/v1/remediations/{request_id}/{decision}/", {"password": password, "reason": "seen"})


def test_a_rollback_requested_approved_and_executed(served, people, django_capture_on_commit_callbacks):
    check = Check(check="feature_drift", feature="income", metric="psi", value=0.4, status="critical")
    (raised,) = alerts_from_run(model="credit", run_id="r1", checks=[check], actor=ALICE)
    asked = _request(client_for(people["ml_engineer"]), evidence=[raised.event_id])
    assert asked.status_code == 201, asked.json()
    request_id = asked.json()["request_id"]
    assert asked.json()["state"] == "requested" and asked.json()["required_approvals"] == 1
    assert asked.json()["evidence"] == [raised.event_id]
    requested = Event.objects.get(event_type="monitoring.RemediationRequested", stream_id=request_id)
    assert str(requested.causation_id) == raised.event_id  # evidence is stored as causation too
    with django_capture_on_commit_callbacks(execute=True):
        approved = _decide(client_for(people["risk_approver"]), request_id)
    assert approved.status_code == 200, approved.json()
    done = Remediation.objects.get(request_id=request_id)
    assert done.state == "succeeded" and Deployment.objects.get(model_id="credit").champion == "1.0"
    detail = client_for(people["auditor"]).get(f"/api/v1/remediations/{request_id}/").json()
    kinds = [h["type"].removeprefix("monitoring.Remediation") for h in detail["history"]]
    assert kinds == ["Requested", "Approved", "ExecutionStarted", "Succeeded"]
    signed = detail["history"][1]
    assert signed["payload"]["signer_name"] == "Risk_Approver_User" and signed["payload"]["meaning"] == "approved"
    assert signed["actor"]["id"] == "risk_approver_user" and signed["reason"] == "seen"


def test_four_eyes_rules(served, people):
    engineer, approver = client_for(people["ml_engineer"]), client_for(people["risk_approver"])
    request_id = _request(engineer).json()["request_id"]
    assert _decide(engineer, request_id).status_code == 403  # not an approver
    assert _decide(approver, request_id, password="wrong").status_code == 403  # re-authentication
    both = person("both", "ml_engineer", "risk_approver")
    own = _request(client_for(both)).json()["request_id"]
    refused = _decide(client_for(both), own)
    assert refused.status_code == 400 and "cannot approve their own request" in refused.json()["detail"]
    assert not Event.objects.filter(
        event_type="monitoring.RemediationApproved", stream_id__in=[request_id, own]
    ).exists()


def test_a_threshold_change_needs_two_different_approvers(credit_model, people, django_capture_on_commit_callbacks):
    request_id = _request(
        client_for(people["ml_engineer"]),
        kind="threshold_change",
        parameters={"policy": {"drift": {"features": {"income": {"floor": 0.3}}}}},
    ).json()["request_id"]
    first = client_for(people["risk_approver"])
    assert _decide(first, request_id).json()["state"] == "requested"
    again = _decide(first, request_id)
    assert again.status_code == 400 and "counts once" in again.json()["detail"]
    second = person("second_approver", "risk_approver")
    with django_capture_on_commit_callbacks(execute=True):
        assert _decide(client_for(second), request_id).json()["state"] in ("approved", "succeeded")
    assert Remediation.objects.get(request_id=request_id).state == "succeeded"
    assert policy_load("credit").policy["drift"]["features"]["income"]["floor"] == 0.3


def test_an_approver_must_hold_the_role_when_deciding(served, people):
    request_id = _request(client_for(people["ml_engineer"])).json()["request_id"]
    approver = people["risk_approver"]
    role_revoke(username=approver.username, role="risk_approver", actor=ADMINISTRATOR, reason="moved team")
    assert _decide(client_for(approver), request_id).status_code == 403


def test_cancel_expire_and_illegal_transitions(served, people):
    engineer = client_for(people["ml_engineer"])
    request_id = _request(engineer).json()["request_id"]
    other = client_for(person("someone", "ml_engineer"))
    assert other.post(f"/api/v1/remediations/{request_id}/cancel/", {"reason": "x"}).status_code == 400
    assert (
        engineer.post(f"/api/v1/remediations/{request_id}/cancel/", {"reason": "fixed upstream"}).json()["state"]
        == "cancelled"
    )
    late = _decide(client_for(people["risk_approver"]), request_id)
    assert late.status_code == 400 and "cancelled" in late.json()["detail"]
    expiring = _request(engineer).json()["request_id"]
    assert remediations_expire(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=4)) == 1
    assert Remediation.objects.get(request_id=expiring).state == "expired"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "rollback", "parameters": {"to_version": "1.1"}}, "champion already"),
        ({"kind": "rollback", "parameters": {"to_version": "9"}}, "no version '9'"),
        ({"kind": "rollback", "parameters": {}}, "missing ['to_version']"),
        ({"kind": "rollback", "parameters": {"to_version": "1.0", "force": True}}, "unknown ['force']"),
        ({"kind": "canary_start", "parameters": {"version": "1.0", "share": 3}}, "canary_share"),
        (
            {
                "kind": "rollback",
                "parameters": {"to_version": "1.0"},
                "evidence": ["4b0c1c59-0000-4000-8000-0000000000aa"],
            },
            "evidence must cite",
        ),
        (
            {
                "kind": "retrain",
                "parameters": {"data_start": "a", "data_end": "b"},
                "break_glass": True,
                "password": PASSWORD,
            },
            "break-glass",
        ),
        (
            {"kind": "retrain", "parameters": {"data_start": {"type": "audit.KeyRotated"}, "data_end": "b"}},
            "data_start must be a single value",
        ),
        (
            {"kind": "accept_risk", "parameters": {"alert_id": ["x"], "until": "2027-01-01"}},
            "alert_id must be a single",
        ),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(served, people, body, message):
    client = client_for(people["risk_approver"] if body.get("break_glass") else people["ml_engineer"])
    before = Event.objects.count()
    answer = client.post("/api/v1/remediations/", {"model": "credit", "reason": "x", **body}, format="json")
    assert answer.status_code == 400 and message in answer.json()["detail"], answer.json()
    assert Event.objects.count() == before


def test_break_glass_is_filed_only_with_the_approvers_password(served, people, django_capture_on_commit_callbacks):
    """A break-glass rollback is carried out the moment it is filed, by one person: a session
    left open, or a stolen session cookie, must not be enough to change what serves. Like a
    signature, it asks for the password again; without it, or with another, nothing is written."""
    approver = client_for(people["risk_approver"])
    before = (Event.objects.count(), Remediation.objects.count())
    with django_capture_on_commit_callbacks(execute=True):
        missing = _request(approver, break_glass=True, password="")
        wrong = _request(approver, break_glass=True, password="not-the-password")
        unsent = approver.post(
            "/api/v1/remediations/",
            {
                "model": "credit",
                "kind": "rollback",
                "parameters": {"to_version": "1.0"},
                "reason": "x",
                "break_glass": True,
            },
            format="json",
        )
    assert missing.status_code == 400 and "re-enter your password" in missing.json()["password"][0], missing.json()
    assert unsent.status_code == 400 and "re-enter your password" in unsent.json()["password"][0], unsent.json()
    assert wrong.status_code == 403 and "re-authentication failed" in wrong.json()["detail"], wrong.json()
    assert (Event.objects.count(), Remediation.objects.count()) == before
    assert Deployment.objects.get(model_id="credit").champion == "1.1"
    engineer = _request(client_for(people["ml_engineer"]), break_glass=True, password="not-the-password")
    assert engineer.status_code == 403 and "risk_approver" in engineer.json()["detail"]  # the role first
    malformed = _request(approver, parameters={"to_version": "9.9"}, break_glass=True, password="not-the-password")
    assert malformed.status_code == 400 and "9.9" in malformed.json()["detail"]  # checked before the password
    assert (Event.objects.count(), Remediation.objects.count()) == before


def test_wrong_break_glass_passwords_count_towards_the_lockout(served, people, settings):
    """Guessing the password through break-glass is guessing it at the sign-in page."""
    approver = client_for(people["risk_approver"])
    guesses = [
        _request(approver, break_glass=True, password="guess").status_code for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert guesses[0] == 403 and guesses[-1] == 429, guesses  # the last guess locks the account
    locked = _request(approver, break_glass=True)  # even the right one, now
    assert locked.status_code == 429 and not Remediation.objects.filter(break_glass=True).exists()


def test_the_service_files_no_break_glass_rollback_without_its_requesters_password(served, people):
    """However it is called (a command, an endpoint to come), not only through the two views."""
    from monitoring.remediation.services import Credentials, ReauthenticationFailed, remediation_request

    approver = people["risk_approver"]
    actor = Actor("user", approver.username, approver.username)
    asked = {"model": "credit", "kind": "rollback", "parameters": {"to_version": "1.0"}, "evidence": [], "reason": "x"}
    before = (Event.objects.count(), Remediation.objects.count())
    for credentials in (None, Credentials(approver, "not-the-password"), Credentials(people["ml_engineer"], PASSWORD)):
        with pytest.raises(ReauthenticationFailed):
            remediation_request(**asked, actor=actor, break_glass=True, credentials=credentials)
    assert (Event.objects.count(), Remediation.objects.count()) == before
    request_id = remediation_request(
        **asked, actor=actor, break_glass=True, credentials=Credentials(approver, PASSWORD)
    )
    assert Remediation.objects.get(request_id=request_id).break_glass


def test_break_glass_executes_at_once_and_waits_for_review(served, people, django_capture_on_commit_callbacks):
    approver = client_for(people["risk_approver"])
    assert _request(client_for(people["ml_engineer"]), break_glass=True).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        asked = _request(approver, break_glass=True)
    request_id = asked.json()["request_id"]
    request = Remediation.objects.get(request_id=request_id)
    assert request.state == "succeeded" and request.break_glass and request.reviewed_by == ""
    assert Deployment.objects.get(model_id="credit").champion == "1.0"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)
    assert len(break_glass_overdue(now=later)) == 1 and break_glass_overdue(now=later) == []
    assert Alert.objects.get(check_name="break_glass_review").severity == "critical"
    assert _decide(approver, request_id, "review").status_code == 400  # not by the one who broke the glass
    reviewer = client_for(person("reviewer", "risk_approver"))
    assert _decide(reviewer, request_id, "review").json()["reviewed_by"] == "reviewer"


def test_a_failed_request_is_not_retried_past_its_approvals_hours(
    served, people, settings, django_capture_on_commit_callbacks
):
    engineer = client_for(people["ml_engineer"])
    request_id = _request(engineer).json()["request_id"]
    approved("credit", "retire_version", {"version": "1.0"}, reason="found broken meanwhile")
    with django_capture_on_commit_callbacks(execute=True):
        _decide(client_for(people["risk_approver"]), request_id)
    assert Remediation.objects.get(request_id=request_id).state == "failed"
    settings.REMEDIATION_RETRY_HOURS = 0  # the approval's hours are over
    before = Event.objects.count()
    answer = engineer.post(f"/api/v1/remediations/{request_id}/retry/")
    assert answer.status_code == 409 and "can no longer be retried" in answer.json()["detail"], answer.json()
    assert Event.objects.count() == before and Remediation.objects.get(request_id=request_id).state == "failed"


def test_a_failed_execution_can_be_retried_and_abandoned(served, people, django_capture_on_commit_callbacks):
    engineer = client_for(people["ml_engineer"])
    request_id = _request(engineer).json()["request_id"]
    approved("credit", "retire_version", {"version": "1.0"}, reason="found broken meanwhile")
    with django_capture_on_commit_callbacks(execute=True):
        _decide(client_for(people["risk_approver"]), request_id)
    failed = Remediation.objects.get(request_id=request_id)
    assert failed.state == "failed" and "retired" in failed.error
    assert Deployment.objects.get(model_id="credit").champion == "1.1"  # nothing half-done
    assert engineer.post(f"/api/v1/remediations/{request_id}/retry/").json()["state"] == "failed"
    abandoned = engineer.post(f"/api/v1/remediations/{request_id}/abandon/", {"reason": "1.0 is retired"})
    assert abandoned.json()["state"] == "abandoned"
    assert engineer.post(f"/api/v1/remediations/{request_id}/abandon/", {"reason": "again"}).status_code == 400


def test_accept_risk_silences_only_the_named_alert_until_its_date(
    credit_model, people, django_capture_on_commit_callbacks
):
    checks = [
        Check(check="feature_drift", feature=f, metric="psi", value=0.4, threshold=0.1, status="critical")
        for f in ("income", "region")
    ]
    alerts_from_run(model="credit", run_id="r1", checks=checks, actor=ALICE)
    income = Alert.objects.get(feature="income")
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat()
    request_id = _request(
        client_for(people["ml_engineer"]),
        kind="accept_risk",
        parameters={"alert_id": str(income.alert_id), "until": until},
    ).json()["request_id"]
    with django_capture_on_commit_callbacks(execute=True):
        _decide(client_for(people["risk_approver"]), request_id)
    assert Remediation.objects.get(request_id=request_id).state == "succeeded"
    assert Alert.objects.get(feature="income").silenced_until is not None
    assert Alert.objects.get(feature="region").silenced_until is None


class Pipeline(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Pipeline.received.append((self.headers["X-Driftledger-Signature"], body))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_retraining_runs_in_an_external_pipeline_that_calls_back(
    credit_model, people, settings, django_capture_on_commit_callbacks
):
    Pipeline.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pipeline)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.PIPELINE_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/dags/retrain"
    settings.PIPELINE_WEBHOOK_SECRET = "pipe-secret"
    try:
        request_id = _request(
            client_for(people["ml_engineer"]),
            kind="retrain",
            parameters={"data_start": "2026-10-01", "data_end": "2026-11-01"},
        ).json()["request_id"]
        with django_capture_on_commit_callbacks(execute=True):
            _decide(client_for(people["risk_approver"]), request_id)
    finally:
        server.shutdown()
    assert Remediation.objects.get(request_id=request_id).state == "executing"
    header, body = Pipeline.received[0]
    stamp = header.split(",")[0].removeprefix("t=")
    assert header == webhook_signature("pipe-secret", body, stamp) and json.loads(body)["model"] == "credit"
    report = orjson.dumps({"request_id": request_id, "ok": True, "detail": {"new_version": "1.2"}})
    anonymous = client_for()
    bad = anonymous.post(
        f"/api/v1/remediations/{request_id}/callback/",
        report,
        content_type="application/json",
        HTTP_X_DRIFTLEDGER_SIGNATURE="t=1,v1=00",
    )
    assert bad.status_code == 401
    now = str(int(time.time()))
    good = anonymous.post(
        f"/api/v1/remediations/{request_id}/callback/",
        report,
        content_type="application/json",
        HTTP_X_DRIFTLEDGER_SIGNATURE=webhook_signature("pipe-secret", report, now),
    )
    assert good.status_code == 200 and good.json()["state"] == "succeeded"
    assert good.json()["result"] == {"new_version": "1.2"}


# accept_risk names an unresolved alert of the request's own model, until a time to come ---------


def _fraud_alert() -> Alert:
    registry.model_register(name="fraud", task="binary_classification", owner="eve", data_schema=SCHEMA, actor=ALICE)
    check = Check(check="feature_drift", feature="income", metric="psi", value=0.4, threshold=0.1, status="critical")
    alerts_from_run(model="fraud", run_id="r-fraud", checks=[check], actor=ALICE)
    return Alert.objects.get(model_name="fraud")


def _in_days(days: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


def test_accept_risk_on_one_model_cannot_silence_another_models_alert(
    credit_model, people, django_capture_on_commit_callbacks
):
    fraud_alert = _fraud_alert()
    asked = _request(
        client_for(people["ml_engineer"]),
        kind="accept_risk",
        parameters={"alert_id": str(fraud_alert.alert_id), "until": _in_days(300)},
    )
    if asked.status_code == 201:
        with django_capture_on_commit_callbacks(execute=True):
            _decide(client_for(people["risk_approver"]), asked.json()["request_id"])
    assert Alert.objects.get(alert_id=fraud_alert.alert_id).silenced_until is None, "fraud's alert silenced"
    assert asked.status_code == 400, asked.json()
    assert "is an alert of fraud, not of credit" in asked.json()["detail"]


def test_accept_risk_executed_checks_the_alerts_model_again_in_its_stream(
    credit_model, people, django_capture_on_commit_callbacks
):
    """A request recorded without the request-time check (as older requests were) still cannot
    silence another model's alert when it executes."""
    fraud_alert = _fraud_alert()
    parameters = {"alert_id": str(fraud_alert.alert_id), "until": _in_days(30)}
    request_id = "7d0f6a52-0000-4000-8000-000000000001"
    remediation_execute(
        request_id,
        lambda r: r.request(
            model="credit", kind="accept_risk", parameters=parameters, evidence=[], required=1, expires_at=None
        ),
        actor=ALICE,
        reason="recorded before the check",
    )
    with django_capture_on_commit_callbacks(execute=True):
        _decide(client_for(people["risk_approver"]), request_id)
    failed = Remediation.objects.get(request_id=request_id)
    assert failed.state == "failed" and "is not an alert of credit" in failed.error
    assert Alert.objects.get(alert_id=fraud_alert.alert_id).silenced_until is None


@pytest.mark.parametrize(
    ("alert", "until", "message"),
    [
        ("00000000-0000-0000-0000-000000000000", "not a date", "alert_id names no alert"),
        ("not-a-uuid", _in_days(7), "alert_id names no alert"),
        (5, 5, "alert_id names no alert"),
        ("income", "not a date", "until must be an ISO 8601 time"),
        ("income", 5, "until must be an ISO 8601 time"),
        ("income", _in_days(-1), "until must be in the future"),
        ("resolved", _in_days(7), "is resolved"),
        ("income", "9999-12-31T23:59:59-01:00", "until must be an ISO 8601 time"),  # past the calendar in UTC
    ],
    ids=[
        "unknown-alert",
        "not-a-uuid",
        "numbers",
        "not-a-date",
        "a-number-for-a-date",
        "past",
        "resolved",
        "year-10000",
    ],
)
def test_accept_risk_with_a_bad_alert_or_date_is_refused_at_request_time(credit_model, people, alert, until, message):
    checks = [
        Check(check="feature_drift", feature=f, metric="psi", value=0.4, threshold=0.1, status="critical")
        for f in ("income", "region")
    ]
    alerts_from_run(model="credit", run_id="r1", checks=checks, actor=ALICE)
    income, region = Alert.objects.get(feature="income"), Alert.objects.get(feature="region")
    client_for(people["ml_engineer"]).post(f"/api/v1/alerts/{region.alert_id}/resolve/", {"reason": "fixed"})
    named = {"income": str(income.alert_id), "resolved": str(region.alert_id)}.get(alert, alert)
    before = Event.objects.count()
    answer = _request(
        client_for(people["ml_engineer"]), kind="accept_risk", parameters={"alert_id": named, "until": until}
    )
    assert answer.status_code == 400 and message in answer.json()["detail"], answer.json()
    assert Event.objects.count() == before


# the pipeline's callback names the request it reports on, and is applied once ------------------


class _QuietPipeline(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def two_retrainings(credit_model, people, settings, django_capture_on_commit_callbacks) -> list[str]:
    """Two retrain requests approved and executing, each waiting for its pipeline's report."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _QuietPipeline)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.PIPELINE_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/dags/retrain"
    settings.PIPELINE_WEBHOOK_SECRET = "pipe-secret"
    ids = []
    try:
        for start in ("2026-09-01", "2026-10-01"):
            parameters = {"data_start": start, "data_end": "2026-11-01"}
            ids.append(
                _request(client_for(people["ml_engineer"]), kind="retrain", parameters=parameters).json()["request_id"]
            )
            with django_capture_on_commit_callbacks(execute=True):
                _decide(client_for(people["risk_approver"]), ids[-1])
    finally:
        server.shutdown()
    assert [Remediation.objects.get(request_id=i).state for i in ids] == ["executing", "executing"]
    return ids


def _report(request_id: str, body: dict):
    raw = orjson.dumps(body)
    header = webhook_signature("pipe-secret", raw, str(int(time.time())))
    return client_for().post(
        f"/api/v1/remediations/{request_id}/callback/",
        raw,
        content_type="application/json",
        HTTP_X_DRIFTLEDGER_SIGNATURE=header,
    )


def test_a_callback_signed_for_one_request_does_not_complete_another(two_retrainings):
    first_id, second_id = two_retrainings
    report = orjson.dumps({"request_id": first_id, "ok": True, "detail": {"new_version": "1.2"}})
    header = webhook_signature("pipe-secret", report, str(int(time.time())))
    first = client_for().post(
        f"/api/v1/remediations/{first_id}/callback/",
        report,
        content_type="application/json",
        HTTP_X_DRIFTLEDGER_SIGNATURE=header,
    )
    assert first.status_code == 200 and first.json()["state"] == "succeeded"
    replayed = client_for().post(  # the same bytes and header, captured, sent to the other request
        f"/api/v1/remediations/{second_id}/callback/",
        report,
        content_type="application/json",
        HTTP_X_DRIFTLEDGER_SIGNATURE=header,
    )
    assert Remediation.objects.get(request_id=second_id).state == "executing", "completed by a replayed callback"
    assert replayed.status_code == 400 and f"about request {first_id}" in replayed.json()["detail"]


def test_a_callback_that_names_no_request_is_refused(two_retrainings):
    answer = _report(two_retrainings[0], {"ok": True, "detail": {}})
    assert answer.status_code == 400 and "request_id" in answer.json()
    assert Remediation.objects.get(request_id=two_retrainings[0]).state == "executing"


def test_a_replayed_callback_is_not_applied_twice(two_retrainings):
    request_id = two_retrainings[0]
    failed = orjson.dumps({"request_id": request_id, "ok": False, "detail": {"error": "out of memory"}})
    header = webhook_signature("pipe-secret", failed, str(int(time.time())))
    sent = [
        client_for().post(
            f"/api/v1/remediations/{request_id}/callback/",
            failed,
            content_type="application/json",
            HTTP_X_DRIFTLEDGER_SIGNATURE=header,
        )
        for _ in range(2)
    ]
    assert sent[0].status_code == 200 and sent[0].json()["state"] == "failed"
    assert sent[1].status_code == 409 and "failed, not executing" in sent[1].json()["detail"]
    assert Event.objects.filter(stream_id=request_id, event_type="monitoring.RemediationFailed").count() == 1


def test_a_failure_report_replayed_after_a_retry_does_not_fail_the_retry(two_retrainings, people, settings):
    request_id = two_retrainings[0]
    failed = orjson.dumps({"request_id": request_id, "ok": False, "detail": {"error": "out of memory"}})
    stamp = int(time.time())
    header = webhook_signature("pipe-secret", failed, str(stamp))

    def send(body: bytes, signature: str):
        return client_for().post(
            f"/api/v1/remediations/{request_id}/callback/",
            body,
            content_type="application/json",
            HTTP_X_DRIFTLEDGER_SIGNATURE=signature,
        )

    assert send(failed, header).json()["state"] == "failed"
    time.sleep(max(0.0, stamp + 1.05 - time.time()))  # the retry begins after the second it was signed in
    server = ThreadingHTTPServer(("127.0.0.1", 0), _QuietPipeline)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.PIPELINE_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/dags/retrain"
    try:
        retried = client_for(people["ml_engineer"]).post(f"/api/v1/remediations/{request_id}/retry/")
    finally:
        server.shutdown()
    assert retried.json()["state"] == "executing", retried.json()
    replayed = send(failed, header)  # within the signature's five minutes
    assert replayed.status_code == 409 and "signed before this execution started" in replayed.json()["detail"]
    assert Remediation.objects.get(request_id=request_id).state == "executing"
    done = orjson.dumps({"request_id": request_id, "ok": True, "detail": {"new_version": "1.2"}})
    assert send(done, webhook_signature("pipe-secret", done, str(int(time.time())))).json()["state"] == "succeeded"


def test_a_callback_for_a_kind_that_awaits_none_is_refused(
    served, people, settings, django_capture_on_commit_callbacks
):
    settings.PIPELINE_WEBHOOK_SECRET = "pipe-secret"
    request_id = _request(client_for(people["ml_engineer"])).json()["request_id"]
    with django_capture_on_commit_callbacks(execute=True):
        _decide(client_for(people["risk_approver"]), request_id)
    answer = _report(request_id, {"request_id": request_id, "ok": False, "detail": {"error": "undo"}})
    assert answer.status_code == 409 and "awaits no pipeline report" in answer.json()["detail"]
    assert Remediation.objects.get(request_id=request_id).state == "succeeded"


def test_a_callback_whose_body_is_not_json_is_a_400(two_retrainings):
    header = webhook_signature("pipe-secret", b"{not json", str(int(time.time())))
    answer = client_for().post(
        f"/api/v1/remediations/{two_retrainings[0]}/callback/",
        b"{not json",
        content_type="application/json",
        HTTP_X_DRIFTLEDGER_SIGNATURE=header,
    )
    assert answer.status_code == 400


# a decision signed at or after the deadline is refused, whether or not beat has expired it ------


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_request_past_its_deadline_cannot_be_decided(served, people, settings, decision):
    settings.REMEDIATION_EXPIRY_HOURS = -1  # the deadline is already behind us when it is filed
    asked = _request(client_for(people["ml_engineer"]))
    assert asked.status_code == 201
    decided = _decide(client_for(people["risk_approver"]), asked.json()["request_id"], decision)
    assert decided.status_code == 409 and "deadline was" in decided.json()["detail"], decided.json()
    assert Remediation.objects.get(request_id=asked.json()["request_id"]).state == "requested"
    assert Deployment.objects.get(model_id="credit").champion == "1.1"


# the quorum counts only approvers who still stand when the last approval arrives ---------------


def _threshold_change(people) -> str:
    asked = _request(
        client_for(people["ml_engineer"]), kind="threshold_change", parameters={"policy": {"window": {"hours": 2}}}
    )
    assert asked.json()["required_approvals"] == 2
    return asked.json()["request_id"]


def test_an_approval_of_a_since_deactivated_approver_does_not_complete_the_quorum(credit_model, people):
    carol = person("carol", "risk_approver")
    request_id = _threshold_change(people)
    assert _decide(client_for(carol), request_id).status_code == 200
    person_deactivate(username="carol", actor=ADMINISTRATOR, reason="credentials compromised")
    last = _decide(client_for(people["risk_approver"]), request_id)
    assert Remediation.objects.get(request_id=request_id).state == "requested", "quorum met with a deactivated signer"
    assert last.status_code == 409 and "approval of carol no longer counts" in last.json()["detail"]
    assert "1 of the 2" in last.json()["detail"]


def test_an_approval_of_an_approver_since_stripped_of_the_role_does_not_count(credit_model, people):
    carol = person("carol", "risk_approver")
    request_id = _threshold_change(people)
    _decide(client_for(carol), request_id)
    role_revoke(username="carol", role="risk_approver", actor=ADMINISTRATOR, reason="moved team")
    assert _decide(client_for(people["risk_approver"]), request_id).status_code == 409
    assert Remediation.objects.get(request_id=request_id).state == "requested"


def test_an_approval_counts_again_once_its_signer_stands_again(
    credit_model, people, django_capture_on_commit_callbacks
):
    carol = person("carol", "risk_approver")
    request_id = _threshold_change(people)
    _decide(client_for(carol), request_id)
    person_deactivate(username="carol", actor=ADMINISTRATOR, reason="on leave")
    person_reactivate(username="carol", actor=ADMINISTRATOR, reason="back")
    with django_capture_on_commit_callbacks(execute=True):
        assert _decide(client_for(people["risk_approver"]), request_id).status_code == 200
    assert Remediation.objects.get(request_id=request_id).state == "succeeded"


def test_an_approval_committed_while_the_broker_is_down_is_still_carried_out(
    served, people, django_capture_on_commit_callbacks
):
    """The request is approved (here: a break-glass rollback, approved as it is filed), but the
    task that carries it out cannot be queued: the broker is unreachable at that moment. Nothing
    could retry, cancel or abandon an approved request, and no beat task looked for one: the
    emergency rollback never happened, while its page said "approved". Beat now queues it."""
    import socket

    from config.celery import app as celery_app
    from monitoring.remediation.services import remediations_stranded
    from monitoring.remediation.tasks import remediation_deadlines

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    previous = {"broker_url": celery_app.conf.broker_url, "task_always_eager": celery_app.conf.task_always_eager}
    celery_app.conf.update(broker_url=f"redis://127.0.0.1:{closed}/0", task_always_eager=False)
    celery_app._pool = None
    try:
        with django_capture_on_commit_callbacks(execute=True):
            asked = _request(client_for(people["risk_approver"]), break_glass=True)
    finally:
        celery_app.conf.update(**previous)
        celery_app._pool = None
    assert asked.status_code == 201 and asked.json()["state"] == "approved", asked.json()
    request_id = asked.json()["request_id"]
    assert Deployment.objects.get(model_id="credit").champion == "1.1"  # not carried out

    assert remediations_stranded() == []  # just approved: its own task may still be on its way
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    assert remediations_stranded(now=later) == [request_id]
    assert remediation_deadlines()["requeued"] == 0  # the beat task, now: nothing stranded yet
    assert remediations_stranded(now=later, queue=True) == [request_id]
    assert Remediation.objects.get(request_id=request_id).state == "succeeded"
    assert Deployment.objects.get(model_id="credit").champion == "1.0"
    assert remediations_stranded(now=later) == []


def test_an_approved_request_never_carried_out_expires_when_its_approval_lapses(served, people, settings):
    """The rollback is approved, but its task never runs: the workers (or the broker) are down
    for a day. Beat queued it again every minute, for good; once they came back, a rollback
    approved for yesterday's incident was made today. An approval holds for the world it was
    given in: past REMEDIATION_RETRY_HOURS after it, the request expires instead, once."""
    from monitoring.remediation.services import remediations_lapsed, remediations_stranded
    from monitoring.remediation.tasks import execute_remediation

    engineer = client_for(people["ml_engineer"])
    request_id = _request(engineer).json()["request_id"]
    assert _decide(client_for(people["risk_approver"]), request_id).status_code == 200  # its task never runs
    now, hours = dt.datetime.now(dt.UTC), settings.REMEDIATION_RETRY_HOURS
    assert remediations_lapsed(now=now + dt.timedelta(hours=hours, minutes=-1)) == []
    assert Remediation.objects.get(request_id=request_id).state == "approved"
    later = now + dt.timedelta(hours=hours, minutes=1)
    assert remediations_lapsed(now=later) == [request_id]
    assert remediations_lapsed(now=later) == []  # once
    expired = Remediation.objects.get(request_id=request_id)
    assert expired.state == "expired" and "approval lapsed" in expired.error, expired.error
    assert remediations_stranded(now=later) == []  # not queued again
    assert execute_remediation(request_id) == "expired"  # its task, delivered at last, does nothing
    assert engineer.post(f"/api/v1/remediations/{request_id}/retry/").status_code != 200
    assert Deployment.objects.get(model_id="credit").champion == "1.1"
    kinds = list(Event.objects.filter(stream_id=request_id).values_list("event_type", flat=True))
    assert kinds[-1] == "monitoring.RemediationApprovalLapsed" and "monitoring.RemediationExecutionStarted" not in kinds
    (told,) = Alert.objects.filter(check_name="approval_lapsed")  # nobody was told before
    assert told.severity == "warning" and told.model_name == "credit"
    assert told.summary.startswith(f"approved rollback {request_id} was not carried out before its approval lapsed")


def test_a_break_glass_rollback_that_lapsed_unmade_raises_a_critical_alert_and_awaits_no_review(
    served, people, settings
):
    from monitoring.remediation.services import remediations_lapsed
    from monitoring.remediation.tasks import execute_remediation

    request_id = _request(client_for(people["risk_approver"]), break_glass=True).json()["request_id"]  # task lost
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=settings.REMEDIATION_RETRY_HOURS, minutes=1)
    assert remediations_lapsed(now=later) == [request_id]
    assert execute_remediation(request_id) == "expired"
    (told,) = Alert.objects.filter(check_name="approval_lapsed")
    assert told.severity == "critical" and "break-glass rollback" in told.summary
    assert break_glass_overdue(now=later) == []  # a rollback never made is not reviewed
    assert Deployment.objects.get(model_id="credit").champion == "1.1"


def test_a_task_delivered_after_the_approval_lapsed_expires_the_request_instead(served, people, settings):
    from monitoring.remediation.tasks import execute_remediation

    request_id = _request(client_for(people["ml_engineer"])).json()["request_id"]
    assert _decide(client_for(people["risk_approver"]), request_id).status_code == 200  # its task not run
    settings.REMEDIATION_RETRY_HOURS = 0  # the approval lapsed the moment it was given
    assert execute_remediation(request_id) == "expired"
    assert execute_remediation(request_id) == "expired"  # delivered twice: one event, one alert
    assert Deployment.objects.get(model_id="credit").champion == "1.1"
    assert Alert.objects.filter(check_name="approval_lapsed").count() == 1
    kinds = list(Event.objects.filter(stream_id=request_id).values_list("event_type", flat=True))
    assert kinds[-1] == "monitoring.RemediationApprovalLapsed" and "monitoring.RemediationExecutionStarted" not in kinds


def test_an_execution_whose_worker_was_lost_ends_as_failed_and_can_be_retried(served, people):
    """The worker records the start of an approved rollback, then is killed (out of memory, or
    an executor that hangs past the task's time limit) before the executors ran. The task is
    redelivered (acks late) but finds the request executing and does nothing; it stayed
    executing for good: no retry, no abandon, the rollback never made. Beat now fails it once
    no task could still be running it, and it is retried (within its approval's hours) or
    abandoned."""
    from monitoring.remediation.services import EXECUTOR, remediations_stalled
    from monitoring.remediation.tasks import execute_remediation

    engineer = client_for(people["ml_engineer"])
    request_id = _request(engineer).json()["request_id"]
    assert _decide(client_for(people["risk_approver"]), request_id).status_code == 200  # its task not run
    remediation_execute(request_id, lambda r: r.start(), actor=EXECUTOR)  # what the lost worker recorded
    assert execute_remediation(request_id) == "executing"  # the redelivered task
    assert engineer.post(f"/api/v1/remediations/{request_id}/retry/").status_code == 404
    assert engineer.post(f"/api/v1/remediations/{request_id}/abandon/", {"reason": "stuck"}).status_code == 400

    assert remediations_stalled() == []  # it may still be running
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)
    assert remediations_stalled(now=later) == [request_id]
    assert remediations_stalled(now=later) == []  # once
    failed = Remediation.objects.get(request_id=request_id)
    assert failed.state == "failed" and "worker" in failed.error and "(retry or abandon it)" in failed.error
    assert Deployment.objects.get(model_id="credit").champion == "1.1"
    answer = engineer.post(f"/api/v1/remediations/{request_id}/retry/")
    assert answer.status_code == 200 and answer.json()["state"] == "succeeded", answer.json()
    assert Deployment.objects.get(model_id="credit").champion == "1.0"


def test_a_retraining_whose_report_never_comes_fails_after_the_report_hours(served, people, settings):
    """A retrain stays executing while its pipeline works, which may take days; but its trigger
    can be lost with its worker (started, never sent), or the pipeline can die without reporting.
    It stayed executing for good: no retry, no abandon, nobody told. Past REMEDIATION_REPORT_HOURS
    beat fails it, once, naming the setting, and a report that comes after is refused."""
    from monitoring.remediation.services import EXECUTOR, remediations_stalled

    settings.REMEDIATION_REPORT_HOURS = 48
    settings.PIPELINE_WEBHOOK_SECRET = "pipe-secret"
    engineer = client_for(people["ml_engineer"])
    request_id = _request(engineer, kind="retrain", parameters={"data_start": "a", "data_end": "b"}).json()[
        "request_id"
    ]
    assert _decide(client_for(people["risk_approver"]), request_id).status_code == 200
    remediation_execute(request_id, lambda r: r.start(), actor=EXECUTOR)  # what the lost worker recorded
    now = dt.datetime.now(dt.UTC)
    assert remediations_stalled(now=now + dt.timedelta(minutes=15)) == []  # past the task's limit: it waits
    assert remediations_stalled(now=now + dt.timedelta(hours=47)) == []
    assert Remediation.objects.get(request_id=request_id).state == "executing"

    assert remediations_stalled(now=now + dt.timedelta(hours=49)) == [request_id]
    assert remediations_stalled(now=now + dt.timedelta(hours=49)) == []  # once
    failed = Remediation.objects.get(request_id=request_id)
    assert failed.state == "failed"
    assert "no report from the retraining pipeline within 48 h (REMEDIATION_REPORT_HOURS)" in failed.error
    assert "its approval's hours for a retry are over: abandon it" in failed.error  # 48 h past a 24 h approval
    late = _report(request_id, {"request_id": request_id, "ok": True, "detail": {"new_version": "1.2"}})
    assert late.status_code == 409 and "failed, not executing" in late.json()["detail"], late.json()
    assert Event.objects.filter(stream_id=request_id, event_type="monitoring.RemediationSucceeded").count() == 0
    abandoned = engineer.post(f"/api/v1/remediations/{request_id}/abandon/", {"reason": "pipeline gone"})
    assert abandoned.status_code == 200 and abandoned.json()["state"] == "abandoned", abandoned.json()
