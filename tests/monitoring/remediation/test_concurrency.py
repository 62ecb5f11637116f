"""Two approvers deciding at the same moment, on committed transactions and separate connections."""

import threading

from audit.models import Event
from monitoring.models import Remediation
from monitoring.registry import services as registry
from tests.monitoring.conftest import ALICE, approved, person
from tests.monitoring.remediation.test_remediations import _decide, _request


def test_two_approvers_at_once_produce_one_consistent_outcome(committed_log, settings):
    from django.db import connection
    from rest_framework.test import APIClient

    registry.model_register(
        name="credit",
        task="binary_classification",
        owner="a",
        data_schema={"numerical": ["income"], "prediction": "score"},
        actor=ALICE,
    )
    for version in ("1.0", "1.1"):
        registry.version_register(name="credit", version=version, artifact_uri=f"s3://{version}", actor=ALICE)
    registry.deployment_change(name="credit", action="promote", version="1.0", actor=ALICE, reason="first release")
    approved("credit", "promote_challenger", {"version": "1.1"}, reason="release")
    requester = person("engineer", "ml_engineer")
    approvers = [person(f"deciding{i}", "risk_approver") for i in range(2)]
    asker = APIClient()
    asker.force_authenticate(requester)
    request_id = _request(asker).json()["request_id"]
    answers = []
    barrier = threading.Barrier(2)

    def approve(user):
        client = APIClient()
        client.force_authenticate(user)
        barrier.wait()
        answers.append(_decide(client, request_id).status_code)
        connection.close()

    threads = [threading.Thread(target=approve, args=(u,)) for u in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 400]  # the second finds the request approved already
    assert Event.objects.filter(event_type="monitoring.RemediationApproved", stream_id=request_id).count() == 1
    assert Remediation.objects.get(request_id=request_id).state in ("approved", "executing", "succeeded")
