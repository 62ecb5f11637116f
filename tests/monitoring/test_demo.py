import io

from django.core.management import call_command

from audit.models import Event


def test_demo_tells_the_credit_scoring_story_and_verifies_the_log(committed_log):
    stdout = io.StringIO()
    call_command("demo", stdout=stdout)
    output = stdout.getvalue()
    for expected in (
        "Registered model 'credit-default'",
        "Monitoring run",
        "tightened the PSI threshold",
        "Critical alert",
        "requested a rollback",
        "Signing key rotated",
        "approved it",
        "Verified the whole log: 8 events, 2 keys",
        "Signed checkpoint at tree size 8",
        "Evidence bundle for 'credit-default': 8 events, 1 data file(s)",
        "Offline verifier (python -m audit.verifier, trusting only the first key): VALID: 8 events",
    ):
        assert expected in output
    types = list(Event.objects.order_by("seq").values_list("event_type", flat=True))
    assert types == [
        "monitoring.ModelRegistered",
        "monitoring.RunStarted",
        "monitoring.RunCompleted",
        "monitoring.ThresholdChanged",
        "monitoring.AlertRaised",
        "monitoring.RemediationRequested",
        "audit.KeyRotated",
        "monitoring.RemediationApproved",
        "audit.EvidenceExported",
    ]

    again = io.StringIO()
    call_command("demo", stdout=again)
    assert "already registered" in again.getvalue()
    assert "Verified the whole log: 16 events, 3 keys" in again.getvalue()  # the first export is an event too
    assert "VALID: 15 events" in again.getvalue()
