"""The monitoring pages: models, a model, a run, alerts, the remediation queue and the policy
editor. Each action goes through the same services and permission declarations as the API;
refusals are shown and record nothing."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pytest

from audit.models import Event
from monitoring.alerting.models import Alert
from monitoring.ingestion.selectors import window_load
from monitoring.registry import services as registry
from monitoring.remediation.models import Remediation
from monitoring.runs.models import Run
from monitoring.runs.services import run_execute
from tests.monitoring.conftest import ALICE, PASSWORD, SCHEMA
from tests.monitoring.runs.conftest import reported  # noqa: F401 - the fixture
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def drifted(people, reported):  # noqa: F811 - the fixture imported above
    start, end = reported
    outcome = run_execute(model="credit", start=start, end=end)
    return outcome.run_id, start, end


def _events(kind: str) -> int:
    return Event.objects.filter(event_type=kind).count()


@pytest.mark.parametrize("role", ["ml_engineer", "risk_approver", "auditor", "compliance_officer", "admin"])
def test_every_role_reads_the_monitoring_pages(people, drifted, role):
    client = signed_in(people[role])
    run_id = drifted[0]
    for url in ("/models/", "/models/credit/", f"/runs/{run_id}/", "/alerts/", "/remediations/"):
        assert client.get(url).status_code == 200, url


def test_a_person_without_a_role_reads_none(people, drifted):
    client = signed_in(people["nobody"])
    for url in ("/models/", "/models/credit/", f"/runs/{drifted[0]}/", "/alerts/", "/remediations/"):
        assert client.get(url).status_code == 403, url


def test_the_overview_shows_each_models_health(people, drifted):
    registry.model_register(name="quiet", task="binary_classification", owner="bob", data_schema=SCHEMA, actor=ALICE)
    page = signed_in(people["ml_engineer"]).get("/models/").content.decode()
    credit = page[page.index('href="/models/credit/"') : page.index('href="/models/quiet/"')]
    open_alerts = Alert.objects.filter(model_name="credit").exclude(status="resolved").count()
    assert open_alerts and f"<strong>{open_alerts}</strong>" in credit
    assert 'class="status critical"' in credit  # the last run's level
    assert "champion 1.0" in credit and "stale</span>" not in credit
    quiet = page[page.index('href="/models/quiet/"') :]
    assert "never" in quiet and "stale</span>" in quiet and "no run yet" in quiet


def test_the_model_page_draws_each_checks_timeline_worst_drift_first(people, drifted):
    page = signed_in(people["ml_engineer"]).get("/models/credit/").content.decode()
    figures = re.findall(r"<figcaption><strong>([^<]+)</strong>(?: · ([^<]+))?", page)
    assert tuple(part.strip() for part in figures[0]) == (
        "feature drift",
        "income",
    )  # income drifted: critical, so first among drift
    assert page.count('<svg class="chart"') == len(figures)
    assert "first release" in page  # the deployment history, from the log


def test_the_model_page_compares_policy_versions(people, drifted):
    from monitoring.policies.services import policy_set

    policy_set(model="credit", policy={"drift": {"alpha": 0.05}}, actor=ALICE, reason="v1")
    policy_set(model="credit", policy={"drift": {"alpha": 0.1}}, actor=ALICE, reason="tighter")
    page = signed_in(people["auditor"]).get("/models/credit/?a=1&b=2").content.decode()
    row = re.search(r"<code>drift.alpha</code></td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", page)
    assert row.groups() == ("0.05", "0.1", "tighter")


def test_the_run_page_puts_the_diagnosis_first_and_groups_checks(people, drifted):
    page = signed_in(people["ml_engineer"]).get(f"/runs/{drifted[0]}/").content.decode()
    assert page.index("Diagnosis:") < page.index('id="kind-feature_drift"')
    assert "covariate shift" in page
    assert "reproducible" in page and f"reproduce_run {drifted[0]}" in page
    assert f'href="/remediations/new/?run={drifted[0]}"' in page


def test_an_engineer_runs_a_window_again_from_its_page(people, drifted, django_capture_on_commit_callbacks):
    run_id = drifted[0]
    refused = signed_in(people["auditor"]).post(f"/runs/{run_id}/again/")
    assert refused.status_code == 403 and Run.objects.count() == 1
    engineer = signed_in(people["ml_engineer"])
    assert "Run this window again" in engineer.get(f"/runs/{run_id}/").content.decode()
    assert "Run this window again" not in signed_in(people["auditor"]).get(f"/runs/{run_id}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        answer = engineer.post(f"/runs/{run_id}/again/", follow=True)
    again = Run.objects.get(revision=1)
    assert again.status == "completed" and str(again.revises) == run_id
    assert "Revision 1 of this window is queued" in answer.content.decode()
    assert f'href="/runs/{again.run_id}/"' in engineer.get(f"/runs/{run_id}/").content.decode()
    shown = engineer.get(f"/runs/{again.run_id}/").content.decode()
    assert "a re-run of" in shown and f'href="/runs/{run_id}/"' in shown


def test_a_retired_models_window_is_not_run_again(people, drifted, django_capture_on_commit_callbacks):
    from tests.monitoring.conftest import approved

    run_id = drifted[0]
    approved("credit", "retire_model", {}, reason="replaced by the new scorecard")
    engineer = signed_in(people["ml_engineer"])
    assert "Run this window again" not in engineer.get(f"/runs/{run_id}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        answer = engineer.post(f"/runs/{run_id}/again/", follow=True)
    assert "cannot be run again" in answer.content.decode() and Run.objects.count() == 1


def test_a_features_distributions_are_read_from_the_runs_own_inputs(people, drifted):
    run_id, start, end = drifted
    client = signed_in(people["ml_engineer"])
    numerical = client.get(f"/runs/{run_id}/features/income/").content.decode()
    current = window_load(model="credit", start=start, end=end, columns=["income"]).columns["income"]
    reference = window_load(model="credit", kind="reference", columns=["income"]).columns["income"]
    assert f"reference: {len(reference)} rows, median {np.median(reference):.4f}" in numerical
    assert f"current: {len(current)} rows, median {np.median(current):.4f}" in numerical
    assert '<svg class="histogram"' in numerical
    categorical = client.get(f"/runs/{run_id}/features/region/").content.decode()
    assert re.search(
        r"<td>mars <span class=\"status warning\">new</span></td><td class=\"num\">0.000</td>", categorical
    )
    assert client.get(f"/runs/{run_id}/features/nonsense/").status_code == 404


def test_alerts_are_acknowledged_resolved_and_silenced_with_reasons(people, drifted):
    alert = Alert.objects.filter(model_name="credit").exclude(status="resolved").first()
    auditor, engineer = signed_in(people["auditor"]), signed_in(people["ml_engineer"])
    assert auditor.post(f"/alerts/{alert.alert_id}/acknowledge/").status_code == 302
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == "auditor_user"
    assert auditor.post(f"/alerts/{alert.alert_id}/resolve/", {"reason": "fine"}).status_code == 403

    before = Event.objects.count()
    engineer.post(f"/alerts/{alert.alert_id}/resolve/", {"reason": ""})
    too_long = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    answer = engineer.post(f"/alerts/{alert.alert_id}/silence/", {"until": too_long, "reason": "holiday"}, follow=True)
    assert "accept_risk" in answer.content.decode()
    assert Event.objects.count() == before

    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    assert (
        engineer.post(f"/alerts/{alert.alert_id}/silence/", {"until": soon, "reason": "deploying a fix"}).status_code
        == 302
    )
    assert engineer.post(f"/alerts/{alert.alert_id}/resolve/", {"reason": "fixed upstream"}).status_code == 302
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolution == "manual"


def test_a_rollback_requested_from_a_run_is_decided_with_a_signature(people, drifted):
    run_id = drifted[0]
    alerts = [str(a) for a in Alert.objects.filter(run_id=str(run_id)).values_list("alert_id", flat=True)]
    engineer, approver = signed_in(people["ml_engineer"]), signed_in(people["risk_approver"])
    form = engineer.get(f"/remediations/new/?run={run_id}").content.decode()
    assert all(alert in form for alert in alerts)
    answer = engineer.post(
        "/remediations/new/",
        {
            "run": str(run_id),
            "kind": "rollback",
            "to_version": "1.0",
            "evidence": [str(run_id), *alerts],
            "reason": "back to 1.0",
        },
    )
    assert answer.status_code == 400 and "1.0" in answer.content.decode()  # 1.0 serves already: refused
    assert not Remediation.objects.exists()
    from tests.monitoring.conftest import approved

    approved("credit", "promote_challenger", {"version": "1.1"})
    answer = engineer.post(
        "/remediations/new/",
        {
            "run": str(run_id),
            "kind": "rollback",
            "to_version": "1.0",
            "evidence": [str(run_id), *alerts],
            "reason": "back to 1.0",
        },
    )
    request = Remediation.objects.get(kind="rollback")
    assert answer["Location"] == f"/remediations/{request.request_id}/"
    assert len(request.evidence) == 1 + len(alerts)

    queue = approver.get("/remediations/").content.decode()
    assert "Waiting for your decision (1)" in queue and "covariate shift" in queue
    own = engineer.get(f"/remediations/{request.request_id}/").content.decode()
    assert "Approve and sign" not in own
    assert (
        engineer.post(
            f"/remediations/{request.request_id}/", {"action": "approve", "password": PASSWORD, "reason": "mine"}
        ).status_code
        == 403
    )

    wrong = approver.post(
        f"/remediations/{request.request_id}/", {"action": "approve", "password": "nope", "reason": "ok"}
    )
    assert wrong.status_code == 400 and "re-authentication failed" in wrong.content.decode()
    assert _events("monitoring.RemediationApproved") == 1  # only the promotion's

    done = approver.post(
        f"/remediations/{request.request_id}/",
        {"action": "approve", "password": PASSWORD, "reason": "evidence holds"},
        follow=True,
    )
    page = done.content.decode()
    signed = Event.objects.filter(event_type="monitoring.RemediationApproved", stream_id=str(request.request_id)).get()
    payload = json.loads(bytes(signed.canonical))["payload"]
    assert f"<strong>{payload['signer_name']}</strong>" in page and payload["signed_at"] in page
    assert "meaning: <strong>approved</strong>" in page


def test_an_approver_whose_role_needs_a_code_signs_with_it(people, drifted):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from monitoring.access.second_factor import sign_in_policy_set
    from tests.monitoring.conftest import ADMINISTRATOR, approved
    from tests.web.conftest import code_of

    approved("credit", "promote_challenger", {"version": "1.1"})
    engineer = signed_in(people["ml_engineer"])
    engineer.post(
        "/remediations/new/",
        {
            "run": str(drifted[0]),
            "kind": "rollback",
            "to_version": "1.0",
            "evidence": [str(drifted[0])],
            "reason": "back",
        },
    )
    request = Remediation.objects.get(kind="rollback")
    device = TOTPDevice.objects.create(user=people["risk_approver"], name="app", confirmed=True)
    sign_in_policy_set(roles=["risk_approver"], actor=ADMINISTRATOR, reason="codes for approvers")
    approver = signed_in(people["risk_approver"])
    page = approver.get(f"/remediations/{request.request_id}/").content.decode()
    assert 'name="code"' in page
    refused = approver.post(
        f"/remediations/{request.request_id}/", {"action": "approve", "password": PASSWORD, "reason": "ok", "code": ""}
    )
    assert refused.status_code == 400 and "code" in refused.content.decode()
    assert (
        approver.post(
            f"/remediations/{request.request_id}/",
            {"action": "approve", "password": PASSWORD, "reason": "ok", "code": code_of(device, 1)},
        ).status_code
        == 302
    )
    assert Remediation.objects.get(kind="rollback").approvals


def test_the_policy_editor_previews_then_applies_a_tightening(people, drifted):
    from monitoring.policies.services import policy_load

    engineer = signed_in(people["ml_engineer"])
    current = policy_load("credit").policy
    tighter = {**current, "drift": {**current["drift"], "alpha": 0.1}}
    preview = engineer.post(
        "/models/credit/policy/", {"policy": json.dumps(tighter), "action": "preview"}, HTTP_HX_REQUEST="true"
    )
    assert "pure tightening" in preview.content.decode() and "<html" not in preview.content.decode()
    answer = engineer.post(
        "/models/credit/policy/", {"policy": json.dumps(tighter), "reason": "watch closer", "action": "submit"}
    )
    assert answer.status_code == 302 and policy_load("credit").policy["drift"]["alpha"] == 0.1


def test_the_policy_editor_turns_a_loosening_into_a_request(people, drifted):
    from monitoring.policies.services import policy_load

    engineer = signed_in(people["ml_engineer"])
    current = policy_load("credit")
    laxer = {**current.policy, "drift": {**current.policy["drift"], "alpha": 0.001}}
    preview = engineer.post(
        "/models/credit/policy/", {"policy": json.dumps(laxer), "action": "preview"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "needs approval" in preview and "drift.alpha" in preview
    answer = engineer.post(
        "/models/credit/policy/", {"policy": json.dumps(laxer), "reason": "too noisy", "action": "submit"}
    )
    request = Remediation.objects.get(kind="threshold_change")
    assert answer["Location"] == f"/remediations/{request.request_id}/"
    assert policy_load("credit").version == current.version  # nothing applies before approval


def test_the_policy_editor_says_an_override_above_its_fallback_needs_approval(people, credit_model):
    engineer = signed_in(people["ml_engineer"])
    muted = {"drift": {"features": {"income": {"floor": 1000.0}}}}
    preview = engineer.post(
        "/models/credit/policy/", {"policy": json.dumps(muted), "action": "preview"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "needs approval" in preview and "pure tightening" not in preview
    assert "unset (drift.effect_floors.wasserstein_normed: 0.1)" in preview
    watchful = {"drift": {"features": {"income": {"floor": 0.05}}}}
    preview = engineer.post(
        "/models/credit/policy/", {"policy": json.dumps(watchful), "action": "preview"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "pure tightening" in preview


def test_the_policy_editor_refuses_what_is_not_a_policy(people, drifted):
    engineer = signed_in(people["ml_engineer"])
    before = Event.objects.count()
    for text, said in [("{not json", "not JSON"), (json.dumps({"drfit": {}}), "drfit")]:
        answer = engineer.post("/models/credit/policy/", {"policy": text, "reason": "x", "action": "submit"})
        assert answer.status_code == 400 and said in answer.content.decode()
    assert (
        signed_in(people["auditor"]).post("/models/credit/policy/", {"policy": "{}", "reason": "x"}).status_code == 403
    )
    assert Event.objects.count() == before


def test_the_model_page_says_who_approved_each_change(people, drifted):
    from tests.monitoring.conftest import approved

    request_id = approved("credit", "promote_challenger", {"version": "1.1"}, reason="validated")
    page = signed_in(people["compliance_officer"]).get("/models/credit/").content.decode()
    section = page[page.index('id="changes-title"') : page.index('id="deploy-title"')]
    signer = Remediation.objects.get(request_id=request_id).approvals[0]
    assert f"/remediations/{request_id}/" in section and signer["name"] in section and signer["at"] in section


def test_kpi_timelines_draw_the_baseline_each_value_was_judged_against():
    from web.charts import timeline

    svg = timeline([("d1", 0.10, "ok"), ("d2", 0.075, "critical")], baseline=[0.10, 0.10], label="kpis ctr")
    assert 'stroke-dasharray="2 3"' in svg and "judged against 0.1 (dashed grey)" in svg
    assert "dashed grey" not in timeline([("d1", 0.1, "ok"), ("d2", 0.2, "ok")], label="drift")


def test_a_break_glass_rollback_asks_the_approvers_password_and_code_when_the_role_needs_one(people, drifted):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from monitoring.access.second_factor import sign_in_policy_set
    from tests.monitoring.conftest import ADMINISTRATOR, approved
    from tests.web.conftest import code_of

    approved("credit", "promote_challenger", {"version": "1.1"})
    device = TOTPDevice.objects.create(user=people["risk_approver"], name="app", confirmed=True)
    sign_in_policy_set(roles=["risk_approver"], actor=ADMINISTRATOR, reason="codes for approvers")
    approver = signed_in(people["risk_approver"])
    page = approver.get(f"/remediations/new/?run={drifted[0]}").content.decode()
    assert 'name="password"' in page and 'name="code"' in page
    form = {
        "run": str(drifted[0]),
        "kind": "rollback",
        "to_version": "1.0",
        "evidence": [str(drifted[0])],
        "reason": "emergency",
        "break_glass": "on",
    }
    for given, why in (
        ({}, "re-enter your password"),
        ({"password": "not-the-password", "code": code_of(device, 1)}, "the password is not this user"),
        ({"password": PASSWORD, "code": ""}, "authenticator"),
    ):
        refused = approver.post("/remediations/new/", {**form, **given})
        assert refused.status_code == 400 and why in refused.content.decode(), why
        assert PASSWORD not in refused.content.decode()  # never echoed back into the form
    assert not Remediation.objects.filter(break_glass=True).exists()
    filed = approver.post("/remediations/new/", {**form, "password": PASSWORD, "code": code_of(device, 1)})
    assert filed.status_code == 302, re.findall(r"role=\"status\">([^<]*)<", filed.content.decode())
    assert Remediation.objects.get(break_glass=True).requested_by == people["risk_approver"].username
