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
    ]

    again = io.StringIO()
    call_command("demo", stdout=again)
    assert "already registered" in again.getvalue()
    assert "Verified the whole log: 15 events, 3 keys" in again.getvalue()
