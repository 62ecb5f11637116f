"""Alerts from runs (raise, deduplicate, update, auto-resolve), by people (acknowledge, resolve,
silence), escalation, the outbox and its notifiers against a real local HTTP receiver, and the
Alertmanager receiver."""

import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from django.db import IntegrityError

from audit.envelope import format_time
from audit.models import Event
from audit.store import NewEvent, append
from monitoring.alerting.domain import AlertAggregate, AlertRaised, AlertSilenced
from monitoring.alerting.models import Alert, Notification, NotificationAttempt
from monitoring.alerting.outbox import deliver_pending
from monitoring.alerting.services import alert_execute, alerts_escalate, alerts_from_run
from monitoring.policies.services import policy_set
from monitoring.runs.domain import Check
from tests.monitoring.conftest import ALICE, client_for

pytestmark = pytest.mark.django_db
SECRET = "whsec-test"


def _check(feature: str, status: str, value: float = 0.3) -> Check:
    return Check(check="feature_drift", feature=feature, metric="psi", value=value, threshold=0.1, status=status)


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, dict]] = []
    failing = False

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Receiver.failing:
            self.send_response(503)
            self.end_headers()
            return
        Receiver.received.append((dict(self.headers), json.loads(body)))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(settings):
    Receiver.received, Receiver.failing = [], False
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    settings.NOTIFIERS = {
        "ops": {"class": "monitoring.alerting.notifiers.WebhookNotifier", "url": f"{url}/hook", "secret": SECRET},
        "pager": {"class": "monitoring.alerting.notifiers.PagerDutyNotifier", "url": f"{url}/pd", "routing_key": "rk"},
        "slack": {"class": "monitoring.alerting.notifiers.SlackNotifier", "url": f"{url}/slack"},
    }
    yield url
    server.shutdown()


def test_a_failing_check_raises_one_alert_that_later_runs_update_and_then_resolve(credit_model):
    alerts_from_run(
        model="credit", run_id="r1", checks=[_check("income", "critical"), _check("age", "ok")], actor=ALICE
    )
    alert = Alert.objects.get()
    assert (alert.feature, alert.severity, alert.status, alert.run_id) == ("income", "critical", "open", "r1")
    alerts_from_run(model="credit", run_id="r2", checks=[_check("income", "warning", 0.15)], actor=ALICE)
    assert Alert.objects.count() == 1 and Alert.objects.get().severity == "warning"
    alerts_from_run(model="credit", run_id="r3", checks=[_check("income", "warning", 0.15)], actor=ALICE)
    assert Event.objects.filter(event_type="monitoring.AlertUpdated").count() == 1  # nothing changed on r3
    alerts_from_run(model="credit", run_id="r4", checks=[_check("income", "ok")], actor=ALICE)
    resolved = Alert.objects.get()
    assert (resolved.status, resolved.resolution) == ("resolved", "auto")
    alerts_from_run(model="credit", run_id="r5", checks=[_check("income", "critical")], actor=ALICE)
    assert Alert.objects.count() == 2  # a new occurrence after the resolution


def test_the_database_refuses_two_unresolved_alerts_for_one_condition(credit_model):
    alerts_from_run(model="credit", run_id="r1", checks=[_check("income", "critical")], actor=ALICE)
    first = Alert.objects.get()
    again = AlertRaised(
        alert_id="4b0c1c59-0000-4000-8000-000000000001",
        model="credit",
        check="feature_drift",
        severity="critical",
        summary="again",
        subject="income",
        feature="income",
    )
    assert again.dedupe_key == first.dedupe_key
    with pytest.raises(IntegrityError):
        append([NewEvent("alert", again.alert_id, again, ALICE)], expected={("alert", again.alert_id): 0})


def test_people_acknowledge_resolve_and_silence_with_reasons(credit_model, people):
    alerts_from_run(model="credit", run_id="r1", checks=[_check("income", "critical")], actor=ALICE)
    alert_id = Alert.objects.get().alert_id
    approver, engineer = client_for(people["risk_approver"]), client_for(people["ml_engineer"])
    acknowledged = approver.post(f"/api/v1/alerts/{alert_id}/acknowledge/")
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged_by"] == "risk_approver_user"
    assert approver.post(f"/api/v1/alerts/{alert_id}/acknowledge/").status_code == 400
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    assert engineer.post(f"/api/v1/alerts/{alert_id}/silence/", {"until": until, "reason": "deploy"}).status_code == 200
    past = engineer.post(f"/api/v1/alerts/{alert_id}/silence/", {"until": "2020-01-01T00:00:00Z", "reason": "x"})
    assert past.status_code == 400
    assert approver.post(f"/api/v1/alerts/{alert_id}/resolve/", {"reason": "x"}).status_code == 403
    assert engineer.post(f"/api/v1/alerts/{alert_id}/resolve/", {}).status_code == 400  # a reason is required
    done = engineer.post(f"/api/v1/alerts/{alert_id}/resolve/", {"reason": "upstream fixed"})
    assert done.json()["status"] == "resolved" and done.json()["resolution"] == "manual"
    resolved = Event.objects.get(event_type="monitoring.AlertResolved")
    assert orjson.loads(bytes(resolved.canonical))["reason"] == "upstream fixed"
    listed = client_for(people["auditor"]).get("/api/v1/alerts/", {"status": "resolved", "model_name": "credit"})
    assert [a["alert_id"] for a in listed.json()] == [str(alert_id)]
    assert client_for(people["auditor"]).get("/api/v1/alerts/", {"status": "open"}).json() == []


def test_unacknowledged_alerts_escalate_once(credit_model):
    alerts_from_run(model="credit", run_id="r1", checks=[_check("income", "critical")], actor=ALICE)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31)
    assert alerts_escalate(after_minutes=60, now=later) == []
    assert len(alerts_escalate(after_minutes=30, now=later)) == 1
    assert alerts_escalate(after_minutes=30, now=later) == []
    assert Alert.objects.get().escalated_at is not None


def test_notifications_leave_only_after_the_commit_signed_and_retried(credit_model, receiver):
    policy_set(model="credit", policy={"notify": ["ops", "pager"]}, actor=ALICE, reason="page us")
    alerts_from_run(model="credit", run_id="r1", checks=[_check("income", "critical")], actor=ALICE)
    assert Notification.objects.filter(status="pending").count() == 2 and Receiver.received == []
    Receiver.failing = True
    assert deliver_pending() == 0
    assert NotificationAttempt.objects.filter(ok=False).count() == 2
    assert Notification.objects.filter(status="pending", attempts=1).count() == 2
    Receiver.failing = False
    assert deliver_pending(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)) == 2
    hook = next((h, b) for h, b in Receiver.received if b.get("event") == "monitoring.AlertRaised")
    stamp, signature = (part.split("=", 1)[1] for part in hook[0]["X-Driftledger-Signature"].split(","))
    body = json.dumps(hook[1], sort_keys=True, separators=(",", ":")).encode()
    assert hmac.compare_digest(
        signature, hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    page = next(b for _, b in Receiver.received if "routing_key" in b)
    assert page["event_action"] == "trigger" and page["dedup_key"] == "driftledger-run:r1"
    alerts_from_run(model="credit", run_id="r2", checks=[_check("income", "ok")], actor=ALICE)
    deliver_pending(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))
    resolve = [b for _, b in Receiver.received if b.get("event_action") == "resolve"]
    assert resolve and resolve[0]["dedup_key"] == page["dedup_key"]


def test_one_degradation_notifies_once_per_notifier(credit_model, receiver):
    """Ten alerts raised by one run are one incident: one message per notifier, naming each alert,
    with the worst severity; PagerDuty resolves it once the last of its alerts is resolved."""
    policy_set(model="credit", policy={"notify": ["ops", "pager"]}, actor=ALICE, reason="page us")
    features = [f"feature_{i}" for i in range(10)]
    checks = [_check(name, "critical" if i == 3 else "warning") for i, name in enumerate(features)]
    alerts_from_run(model="credit", run_id="r1", checks=checks, actor=ALICE)
    assert Alert.objects.count() == 10 and Notification.objects.count() == 2  # not 20
    assert deliver_pending() == 2
    hook = next(b for h, b in Receiver.received if "alerts" in b)
    assert hook["incident"] == "run:r1" and hook["severity"] == "critical" and len(hook["alerts"]) == 10
    assert sorted(a["feature"] for a in hook["alerts"]) == sorted(features)
    assert hook["summary"].startswith("10 alerts of the incident of run r1:") and "and 5 more" in hook["summary"]
    pages = [b for _, b in Receiver.received if "routing_key" in b]
    assert [p["event_action"] for p in pages] == ["trigger"]
    # Acknowledging one alert of ten does not acknowledge the pager's incident.
    first = Alert.objects.order_by("raised_seq").first()
    alert_execute(str(first.alert_id), lambda a: a.acknowledge(), actor=ALICE)
    deliver_pending(now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    assert not [b for _, b in Receiver.received if b.get("event_action") == "acknowledge"]
    # A later run clears half the conditions: one resolution message, the pager's incident stays open.
    later = [_check(name, "ok" if i < 5 else "warning") for i, name in enumerate(features)]
    alerts_from_run(model="credit", run_id="r2", checks=later, actor=ALICE)
    assert Notification.objects.filter(status="pending").count() == 2  # the resolutions of r1's alerts, grouped
    deliver_pending(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    resolved = [b for _, b in Receiver.received if b.get("event") == "monitoring.AlertResolved"]
    assert len(resolved) == 1 and len(resolved[0]["alerts"]) == 5 and resolved[0]["open_alerts"] == 5
    assert not [b for _, b in Receiver.received if b.get("event_action") == "resolve"]
    alerts_from_run(model="credit", run_id="r3", checks=[_check(name, "ok") for name in features], actor=ALICE)
    deliver_pending(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))
    closing = [b for _, b in Receiver.received if b.get("event_action") == "resolve"]
    assert len(closing) == 1 and closing[0]["dedup_key"] == "driftledger-run:r1"


def test_an_alert_notified_before_incidents_keeps_its_own_key(credit_model, receiver):
    policy_set(model="credit", policy={"notify": ["pager"]}, actor=ALICE, reason="page us")
    alerts_from_run(model="credit", run_id="r1", checks=[_check("income", "critical")], actor=ALICE)
    alert = Alert.objects.get()
    Notification.objects.update(incident="", message={"alert_id": str(alert.alert_id)})  # as rows stood before
    deliver_pending()  # the legacy row: nothing a receiver cares about here
    Receiver.received.clear()
    alerts_from_run(model="credit", run_id="r2", checks=[_check("income", "ok")], actor=ALICE)
    deliver_pending(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    (page,) = [b for _, b in Receiver.received if "routing_key" in b]
    assert page["event_action"] == "resolve" and page["dedup_key"] == f"driftledger-{alert.alert_id}"


def test_a_rolled_back_alert_sends_nothing(credit_model, receiver):
    policy_set(model="credit", policy={"notify": ["ops"]}, actor=ALICE, reason="notify")
    with pytest.raises(RuntimeError):
        from django.db import transaction

        with transaction.atomic():
            alerts_from_run(model="credit", run_id="r1", checks=[_check("income", "critical")], actor=ALICE)
            raise RuntimeError("the run's transaction fails after raising the alert")
    assert not Notification.objects.exists() and deliver_pending() == 0 and Receiver.received == []


def test_a_policy_naming_an_unknown_notifier_is_refused(credit_model, people):
    answer = client_for(people["ml_engineer"]).put(
        "/api/v1/models/credit/policies/", {"policy": {"notify": ["nowhere"]}, "reason": "x"}, format="json"
    )
    assert answer.status_code == 400 and "no notifier named 'nowhere'" in answer.json()["detail"]


def test_alertmanager_firing_and_resolved_open_and_close_alerts(credit_model, settings):
    settings.ALERTMANAGER_TOKEN = "am-token"
    body = {
        "status": "firing",
        "alerts": [
            {"status": "firing", "labels": {"alertname": "HighLatency", "model": "credit", "severity": "critical"}},
            {"status": "firing", "labels": {"alertname": "Other", "model": "ghost"}},
        ],
    }
    client = client_for()
    assert client.post("/api/v1/alertmanager/", body, format="json").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer am-token")
    assert client.post("/api/v1/alertmanager/", body, format="json").json() == {"opened": 1, "resolved": 0}
    assert client.post("/api/v1/alertmanager/", body, format="json").json() == {"opened": 0, "resolved": 0}
    alert = Alert.objects.get()
    assert (alert.check_name, alert.severity, alert.status) == ("prometheus", "critical", "open")
    body["alerts"][0]["status"] = "resolved"
    assert client.post("/api/v1/alertmanager/", body, format="json").json() == {"opened": 0, "resolved": 1}
    assert Alert.objects.get().status == "resolved"
    assert client.post("/api/v1/alertmanager/", {"status": "bogus"}, format="json").status_code == 400


@pytest.mark.parametrize(
    "alerts",
    [[{"labels": ["model", "credit"]}], [{"labels": {"model": ["credit"]}}], ["not an object"], [{"labels": "x"}]],
)
def test_alertmanager_malformed_alerts_are_a_400_and_open_nothing(credit_model, settings, alerts):
    settings.ALERTMANAGER_TOKEN = "am-token"
    client = client_for()
    client.raise_request_exception = False
    answer = client.post(
        "/api/v1/alertmanager/",
        {"status": "firing", "alerts": alerts},
        format="json",
        HTTP_AUTHORIZATION="Bearer am-token",
    )
    assert answer.status_code == 400, answer.content[:300]
    assert "alerts" in answer.json()
    assert not Alert.objects.exists()


def _silenced_until(hours: float) -> AlertAggregate:

    alert = AlertAggregate("4b0c1c59-0000-4000-8000-000000000002")
    raised = AlertRaised(
        alert_id=alert.alert_id, model="credit", check="feature_drift", severity="critical", summary="drift",
        subject="income", feature="income",
    )  # fmt: skip
    alert.apply(raised)
    alert.apply(AlertSilenced(alert_id=alert.alert_id, until=format_time(T0 + dt.timedelta(hours=hours))))
    return alert


T0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("now_hours", "until_hours", "allowed"),
    [
        (24 + 1 / 60, 48, False),  # a day's silence chained to the one that just ended
        (12, 36, False),  # extended while it holds
        (47.9, 50, False),  # a day has not passed since it ended
        (48, 72, True),  # a day after it ended: a silence of its own
        (1, 5, True),  # ending it sooner
        (1, 24, True),  # the same end
    ],
)
def test_a_silence_by_hand_cannot_extend_the_last_within_a_day_of_its_end(now_hours, until_hours, allowed):
    """Silences of a day each, chained, would keep an alert quiet for good without an approval."""
    from monitoring.remediation.kinds import ApprovalRequired

    alert = _silenced_until(24)
    now, until = T0 + dt.timedelta(hours=now_hours), T0 + dt.timedelta(hours=until_hours)
    if allowed:
        assert alert.silence(until, now, max_hours=24)
    else:
        with pytest.raises(ApprovalRequired, match="extends that silence"):
            alert.silence(until, now, max_hours=24)
    assert alert.silence(until, now, max_hours=None)  # an approved accept_risk has no bound


def test_a_second_days_silence_through_the_api_asks_for_an_approval(credit_model, people):
    alerts_from_run(model="credit", run_id="r1", checks=[_check("income", "critical")], actor=ALICE)
    alert_id = str(Alert.objects.get().alert_id)
    engineer = client_for(people["ml_engineer"])
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat()
    assert engineer.post(f"/api/v1/alerts/{alert_id}/silence/", {"until": soon, "reason": "deploy"}).status_code == 200
    day = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)).isoformat()
    chained = engineer.post(f"/api/v1/alerts/{alert_id}/silence/", {"until": day, "reason": "again"}, format="json")
    assert chained.status_code == 409 and chained.json()["approval"]["kind"] == "accept_risk"
    assert Event.objects.filter(event_type="monitoring.AlertSilenced").count() == 1  # nothing more recorded
