import io

from django.core.management import call_command

from audit.models import Event
from monitoring.models import Batch, Deployment


def test_demo_tells_the_credit_scoring_story_and_verifies_the_log(committed_log):
    stdout = io.StringIO()
    call_command("demo", stdout=stdout)
    output = stdout.getvalue()
    for expected in (
        "registered 'credit-default' with versions 2026.10.1 and 2026.11.0; champion 2026.11.0",
        "only its SHA-512 hash is kept",
        "reported 5,000 reference rows and 5,000 predictions (POST /api/v1/models/credit-default/predictions/: 201",
        "drift in income (income: normed Wasserstein",
        "tightened the PSI threshold",
        "Critical alert",
        "requested a rollback to 2026.10.1",
        "Signing key rotated",
        "Bob Okafor (risk approver) re-entered his password and approved it",
        "The rollback executed (succeeded): champion 2026.10.1",
        "Verified the whole log: 18 events, 2 keys",
        "Signed checkpoint at tree size 18",
        "Evidence bundle for 'credit-default': 18 events, 3 data file(s)",
        "Offline verifier (python -m audit.verifier, trusting only the first key): VALID: 18 events",
    ):
        assert expected in output, expected
    types = list(Event.objects.order_by("seq").values_list("event_type", flat=True))
    assert types == [
        "monitoring.ModelRegistered",
        "monitoring.ModelVersionRegistered",
        "monitoring.DeploymentChanged",
        "monitoring.ModelVersionRegistered",
        "monitoring.DeploymentChanged",
        "monitoring.ApiKeyIssued",
        "monitoring.BatchIngested",
        "monitoring.BatchIngested",
        "monitoring.RunStarted",
        "monitoring.RunCompleted",
        "monitoring.ThresholdChanged",
        "monitoring.AlertRaised",
        "monitoring.RemediationRequested",
        "audit.KeyRotated",
        "monitoring.RemediationApproved",
        "monitoring.RemediationExecutionStarted",
        "monitoring.DeploymentChanged",
        "monitoring.RemediationSucceeded",
        "audit.EvidenceExported",
    ]
    completed = Event.objects.get(event_type="monitoring.RunCompleted").payload
    assert [c["feature"] for c in completed["checks"] if c["status"] == "drift"] == ["income"]
    assert Deployment.objects.get(model_id="credit-default").champion == "2026.10.1"
    assert Batch.objects.count() == 2

    again = io.StringIO()
    call_command("demo", stdout=again)
    assert "already registered" in again.getvalue()
    assert "The rollback executed (succeeded): champion 2026.10.1" in again.getvalue()
