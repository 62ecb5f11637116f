"""The pages as a hostile person drives them, by hand-written requests rather than the forms:
what the API refuses, the page refuses too, and nothing a person types answers 500."""

from __future__ import annotations

import re

import pytest

from audit.models import Event
from monitoring.remediation.models import Remediation
from monitoring.runs.services import run_execute
from tests.monitoring.conftest import PASSWORD, approved
from tests.monitoring.runs.conftest import reported  # noqa: F401 - the fixture
from tests.web.conftest import code_of, signed_in

pytestmark = pytest.mark.django_db
PASSPHRASE = "a-long-passphrase"


@pytest.fixture
def drifted(people, reported):  # noqa: F811 - the fixture imported above
    start, end = reported
    return run_execute(model="credit", start=start, end=end).run_id


@pytest.fixture
def requested(people, drifted) -> Remediation:
    """A rollback an engineer requested from the run's page, waiting for a decision."""
    approved("credit", "promote_challenger", {"version": "1.1"})
    answer = signed_in(people["ml_engineer"]).post(
        "/remediations/new/",
        {"run": str(drifted), "kind": "rollback", "to_version": "1.0", "reason": "back to 1.0"},
    )
    assert answer.status_code == 302
    return Remediation.objects.get(kind="rollback")


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_request_without_a_reason_is_refused_as_the_api_refuses_it(people, drifted, reason):
    approved("credit", "promote_challenger", {"version": "1.1"})
    before = Event.objects.count()
    answer = signed_in(people["ml_engineer"]).post(
        "/remediations/new/", {"run": str(drifted), "kind": "rollback", "to_version": "1.0", "reason": reason}
    )
    assert answer.status_code == 400 and "reason" in answer.content.decode()
    assert Event.objects.count() == before and not Remediation.objects.filter(kind="rollback").exists()


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_a_decision_without_a_reason_is_not_signed(people, requested, action):
    before = Event.objects.count()
    answer = signed_in(people["risk_approver"]).post(
        f"/remediations/{requested.request_id}/", {"action": action, "password": PASSWORD, "reason": " "}
    )
    assert answer.status_code == 400 and "reason" in answer.content.decode()
    requested.refresh_from_db()
    assert requested.state == "requested" and Event.objects.count() == before


def test_a_withdrawal_without_a_reason_is_refused(people, requested):
    before = Event.objects.count()
    answer = signed_in(people["ml_engineer"]).post(
        f"/remediations/{requested.request_id}/", {"action": "cancel", "reason": ""}
    )
    assert answer.status_code == 400
    requested.refresh_from_db()
    assert requested.state == "requested" and Event.objects.count() == before


def test_a_policy_change_without_a_reason_is_refused(people, drifted):
    from monitoring.policies.services import policy_load

    policy = policy_load("credit").policy
    before = Event.objects.count()
    answer = signed_in(people["ml_engineer"]).post(
        "/models/credit/policy/", {"policy": __import__("json").dumps(policy), "reason": "", "action": "submit"}
    )
    assert answer.status_code == 400 and "reason" in answer.content.decode()
    assert Event.objects.count() == before


@pytest.mark.parametrize("run", ["not-a-run", "1234", "../"])
def test_a_run_that_is_not_a_run_id_is_404_not_500(people, run):
    engineer = signed_in(people["ml_engineer"])
    engineer.raise_request_exception = False
    assert engineer.get("/remediations/new/", {"run": run}).status_code == 404
    assert engineer.post("/remediations/new/", {"run": run, "kind": "rollback", "reason": "r"}).status_code == 404


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"])
def test_a_time_out_of_range_is_refused_and_files_nothing(people, drifted, start):
    engineer = signed_in(people["ml_engineer"])
    engineer.raise_request_exception = False
    form = {"run": str(drifted), "kind": "retrain", "data_start": start, "data_end": "2026-12-01", "reason": "r"}
    answer = engineer.post("/remediations/new/", form)
    assert answer.status_code == 400 and "out of range" in answer.content.decode()
    assert not Remediation.objects.exists()


@pytest.mark.parametrize(
    ("role", "method", "url", "form"),
    [
        ("auditor", "get", "/alerts/?model=%00", None),
        ("auditor", "get", "/alerts/?status=open%00", None),
        ("auditor", "get", "/models/cre%00dit/", None),
        ("auditor", "get", "/models/%00/policy/", None),
        ("admin", "get", "/people/%00/", None),
        ("admin", "post", "/people/", {"username": "zo\x00e", "full_name": "Z", "password": PASSPHRASE, "reason": "r"}),
        ("admin", "post", "/people/nobody/", {"action": "deactivate", "reason": "gone\x00"}),
    ],
)
def test_a_nul_character_is_a_bad_request_not_a_server_error(people, credit_model, role, method, url, form):
    """PostgreSQL holds no NUL character: an address or a form carrying one is refused, and
    nothing is written."""
    client = signed_in(people[role])
    client.raise_request_exception = False
    before = Event.objects.count()
    assert getattr(client, method)(url, form or {}).status_code == 400
    assert Event.objects.count() == before


def test_the_api_refuses_a_nul_in_its_addresses_too(people, credit_model):
    from tests.monitoring.conftest import client_for

    client = client_for(people["admin"])
    client.raise_request_exception = False
    for url in ("/api/v1/models/%00/", "/api/v1/users/%00/"):
        answer = client.get(url)
        assert answer.status_code == 400 and answer["Content-Type"] == "application/problem+json", url


def test_a_signed_in_session_cannot_replace_the_authenticator_it_signed_in_with(people):
    """Whoever holds a signed-in session (a desk left open) must not swap the person's
    authenticator for their own: a lost one is reset by an administrator, with a reason."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from monitoring.access.second_factor import sign_in_policy_set
    from tests.monitoring.conftest import ADMINISTRATOR
    from tests.web.test_signin import _enrol

    sign_in_policy_set(roles=["risk_approver"], actor=ADMINISTRATOR, reason="approvers show a code")
    approver = people["risk_approver"]
    own = _enrol(approver)
    session = signed_in(approver, code_ahead=1)
    before = Event.objects.count()
    assert session.get("/signin/enrol/").status_code == 403  # no new secret is shown
    assert not TOTPDevice.objects.filter(user=approver, confirmed=False).exists()
    assert session.post("/signin/enrol/", {"code": code_of(own, 2)}).status_code == 403
    assert list(TOTPDevice.objects.filter(user=approver, confirmed=True)) == [own]
    assert Event.objects.count() == before


LOG_EVENT_LINK = re.compile(r'href="/log/\d+/"')


def test_only_those_who_read_the_log_are_given_links_into_it(people, requested, drifted):
    """An engineer's or approver's pages name the events they rest on without linking to the
    event page, which answers them 403; the log's readers get the links."""
    approver = signed_in(people["risk_approver"])
    approver.post(f"/remediations/{requested.request_id}/", {"action": "approve", "password": PASSWORD, "reason": "ok"})
    pages = (f"/runs/{drifted}/", "/alerts/", f"/remediations/{requested.request_id}/", "/models/credit/")
    for role in ("ml_engineer", "risk_approver"):
        client = signed_in(people[role])
        for url in pages:
            page = client.get(url).content.decode()
            assert not LOG_EVENT_LINK.search(page), (role, url)
            assert client.get("/log/1/").status_code == 403
    officer = signed_in(people["compliance_officer"])
    for url in pages:
        assert LOG_EVENT_LINK.search(officer.get(url).content.decode()), url


def test_a_features_distributions_say_so_when_the_runs_files_are_gone(people, drifted):
    """The run page says when files it read are no longer stored; the distributions it loads as
    the reader scrolls say so too, instead of a 500 that leaves "loading…" on the page."""
    from audit.blobs import blob_delete
    from monitoring.runs.models import Run

    run = Run.objects.get(run_id=drifted)
    blob_delete(run.input_digests[0])
    client = signed_in(people["ml_engineer"])
    client.raise_request_exception = False
    assert "files missing" in client.get(f"/runs/{drifted}/").content.decode()
    for feature in ("income", "region"):
        answer = client.get(f"/runs/{drifted}/features/{feature}/")
        assert answer.status_code == 200 and "no longer stored" in answer.content.decode(), feature


def test_a_features_distributions_are_not_drawn_from_a_result_changed_in_storage(people, drifted, settings):
    """The result names the files the charts read: one changed in storage is not trusted."""
    from pathlib import Path

    from audit.blobs import blob_path
    from monitoring.runs.models import Run

    run = Run.objects.get(run_id=drifted)
    (Path(settings.MEDIA_ROOT) / blob_path(run.result_digest)).write_bytes(b'{"inputs": {}}')
    client = signed_in(people["ml_engineer"])
    client.raise_request_exception = False
    answer = client.get(f"/runs/{drifted}/features/income/")
    assert answer.status_code == 200 and "not the one the log recorded" in answer.content.decode()
