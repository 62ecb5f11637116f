"""The demo tells only what happened: its figures are those of the events it caused through the
product's own paths, its run reproduces byte for byte, and every event validates."""

import io
import re

import pytest
from django.core.management import CommandError, call_command

from audit import events
from audit.models import Event, LogVerification
from monitoring.ingestion.models import Batch
from monitoring.registry.models import Deployment
from monitoring.runs.domain import RunCompleted, RunDiagnosed
from monitoring.runs.models import Run


def test_demo_tells_the_credit_scoring_story_and_verifies_the_log(committed_log):
    stdout = io.StringIO()
    call_command("demo", stdout=stdout)
    output = stdout.getvalue()
    for expected in (
        "registered 'credit-default' with versions 2026.10.1 and 2026.11.0; 2026.10.1 went live",
        "Bob Okafor (risk approver) approved the promotion of 2026.11.0 to champion of credit-default",
        "only its SHA-512 hash is kept",
        "reported 5,000 reference rows and 5,000 predictions (POST /api/v1/models/credit-default/predictions/: 201",
        "Alice Martin requested a change of credit-default's monitoring policy",
        "Carol Chen (risk approver) approved a change of credit-default's monitoring policy",
        "drift in income",
        "A critical alert was raised on credit-default: feature_drift on income",
        "Alice Martin requested the rollback of credit-default to 2026.10.1",
        "rotated the log's signing key",
        "Bob Okafor (risk approver) approved the rollback of credit-default to 2026.10.1",
        "The rollback executed (succeeded): champion 2026.10.1",
        "more reference rows: 409, staged as",
        "(risk approver) approved adding the staged batch",
        "executed (succeeded): 5,000 rows joined the reference",
        "and checks it against the log's public keys: the DeploymentChanged of seq",
        "cosigned by 2 of 2 witness processes (python -m audit.witness",
        "trusting only the log's first key and the two witnesses' keys): VALID",
        "(2 of 2, quorum 2)",
    ):
        assert expected in output, expected

    # The printed figures are the signed ones.
    completed = Event.objects.get(event_type=RunCompleted.type_name, payload__model="credit-default")
    assert completed.schema == RunCompleted.type_schema and completed.actor_id == "alice"
    # The policy the run applied came from the approved request, by two people other than Alice.
    policy = Event.objects.get(event_type="monitoring.PolicySet")
    request = Event.objects.get(event_id=policy.causation_id)
    approvers = Event.objects.filter(stream_id=request.stream_id, event_type="monitoring.RemediationApproved")
    assert sorted(approvers.values_list("actor_id", flat=True)) == ["bob", "carol"]
    drift = (c for c in completed.payload["checks"] if c["check"] == "feature_drift")  # not its data-quality checks
    income = next(c for c in drift if c.get("feature") == "income")
    assert income["status"] == "critical"
    assert f"psi {income['value']:.2f} (floor {income['threshold']:.2f}), KS p = {income['p_value']:.1e}" in output
    diagnosed = Event.objects.get(event_type=RunDiagnosed.type_name, payload__model="credit-default").payload
    assert f"Diagnosis: {diagnosed['cause']} ({diagnosed['scope']})" in output
    total = Event.objects.count() - 1  # the export records itself after the bundle is written
    assert f"Verified the whole log: {total} events, 2 keys" in output
    assert f"Signed checkpoint at tree size {total}" in output
    # The export's own event, after the head step 12 verified: the incremental verification's one event.
    assert f"16. Verified the 1 event(s) appended since (seq {total + 1}..{total + 1}), chained to the head" in output
    assert LogVerification.objects.filter(ok=True, first_seq=total + 1, events_checked=total + 1).exists()

    # The two other situations, as their runs recorded them: a new segment in the churn model; a
    # day of broken data, then a click-through rate that falls while the recommender holds.
    churn = Run.objects.filter(model_name="churn-telco").order_by("-window_end")
    assert churn.count() == 7 and churn[0].diagnosis["cause"] == "covariate_shift"
    assert "region=online-apac" in churn[0].diagnosis["new_segments"]
    assert f"Diagnosis: covariate_shift ({churn[0].diagnosis['scope']})" in output
    # Its last outcomes arrived after its run: the realized figures revised its diagnosis, which
    # now names the new cohort's collapse (its AUC against the reference population as a whole).
    revised = Event.objects.get(event_type="monitoring.RunDiagnosisRevised", stream_id=str(churn[0].run_id))
    assert churn[0].diagnosis["revision"] == 1 and revised.payload["cause"] == "covariate_shift"
    cohort = next(
        c for c in revised.payload["checks"] if c.get("segment") == "region=online-apac" and c["metric"] == "roc_auc"
    )
    assert cohort["status"] == "critical" and cohort["value"] < 0.6
    assert f"region=online-apac roc_auc {cohort['value']:.3f} against {cohort['reference']:.3f}" in output
    causes = [
        run.diagnosis["cause"] for run in Run.objects.filter(model_name="recommender-home").order_by("window_end")
    ]
    assert causes[-3:] == ["data_quality", "no_problem", "user_behaviour_change"]
    assert re.search(r"the last three diagnosed \S+ data_quality, \S+ no_problem, \S+ user_behaviour_change", output)

    # Every event validates against the production schemas of its type and version.
    for kind, schema, payload in Event.objects.values_list("event_type", "schema", "payload"):
        events.parse(kind, schema, payload)

    # The run reproduces byte for byte.
    run_id = re.search(r"reproduce_run ([0-9a-f-]{36})", output).group(1)
    reproduced = io.StringIO()
    call_command("reproduce_run", run_id, stdout=reproduced)
    assert reproduced.getvalue().startswith(f"IDENTICAL: run {run_id}")

    assert Deployment.objects.get(model_id="credit-default").champion == "2026.10.1"
    assert Batch.objects.filter(model__name="credit-default").count() == 3  # the staged one, once approved

    again = io.StringIO()
    call_command("demo", stdout=again)
    assert "already registered" in again.getvalue()
    assert "newer reference batch is in the reference already" in again.getvalue()
    assert "approved the promotion of 2026.11.0" in again.getvalue()  # released again, with approval
    assert "The rollback executed (succeeded): champion 2026.10.1" in again.getvalue()


def test_the_demo_refuses_a_log_it_did_not_begin(committed_log):
    """A production log is never the demo's: nothing of the story is written into it."""
    from audit.store import append
    from tests.audit.factories import ALICE, noted_event

    append([noted_event("production")], expected={("note", "production"): 0})
    with pytest.raises(CommandError, match=f"not begun by the demo .its first event is by '{ALICE.id}'"):
        call_command("demo", stdout=io.StringIO())
    assert Event.objects.count() == 1
