"""The database gone while an append waited for its seal (OutcomeUnknown) is an outage, not a
refusal: tasks retry it (a retried command carries its expected versions), and the API answers
503 with Retry-After, without claiming that nothing was stored."""

from __future__ import annotations

from rest_framework.test import APIRequestFactory

from audit.sequencer import OutcomeUnknown, Submission
from monitoring.http import exception_handler
from monitoring.runs.tasks import combine_run_parts, run_monitoring
from monitoring.tasks import INFRASTRUCTURE_ERRORS

EVENT_ID = "0b6c1b8e-4a0e-4d8e-9a53-6a1f3c5e2d11"


def _unknown() -> OutcomeUnknown:
    return OutcomeUnknown(Submission("batch-1", 7, [EVENT_ID], [], [], {}))


def test_tasks_retry_an_append_whose_outcome_the_database_could_not_tell():
    assert issubclass(OutcomeUnknown, INFRASTRUCTURE_ERRORS)
    for task in (run_monitoring, combine_run_parts):
        assert OutcomeUnknown in task.autoretry_for


def test_the_api_answers_503_naming_the_events_and_never_says_nothing_was_stored():
    request = APIRequestFactory().post("/api/v1/models/credit/predictions/")
    answer = exception_handler(_unknown(), {"request": request, "view": None})
    assert answer is not None and answer.status_code == 503 and answer["Retry-After"]
    assert EVENT_ID in answer.data["detail"] and "nothing was stored" not in answer.data["detail"]
