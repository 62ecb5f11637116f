"""Time from the last approval of a rollback to the deployment endpoint serving the new champion.

Measured the way serving sees it: the approver's API call returns, then a poll of
GET /api/v1/models/NAME/deployment/ with the previous ETag answers 200 with the new champion.
Tasks run eagerly (on commit), as the demo runs them; with a live worker add the queue hop.
Most of the time is the approver's password check (PBKDF2, Django's default cost), which the
four-eyes signature requires.

Target (issue 7): < 1 s.

    python bench/rollback.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import ACTOR, scratch_database
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.test import APIClient

from config.celery import app as celery_app
from monitoring.registry import services as registry

SCHEMA = {"numerical": ["x"], "prediction": "score"}
PASSWORD = "bench-password"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    options = parser.parse_args()
    celery_app.conf.task_always_eager = True  # the execution runs on commit, in this process (no queue hop)
    with scratch_database("driftledger_bench_rollback"):
        registry.model_register(name="bench", task="regression", owner="bench", data_schema=SCHEMA, actor=ACTOR)
        for version in ("1", "2"):
            registry.version_register(name="bench", version=version, artifact_uri=f"s3://{version}", actor=ACTOR)
        # The first champion goes live directly; every later change through an approved request (below).
        registry.deployment_change(name="bench", action="promote", version="1", actor=ACTOR, reason="first")
        key = registry.api_key_issue(name="bench", label="serving", expires_at=None, actor=ACTOR)[1]
        engineer = User.objects.create_user("engineer")
        engineer.groups.add(Group.objects.get(name="ml_engineer"))
        approver = User.objects.create_user("approver", password=PASSWORD, first_name="Risk", last_name="Approver")
        approver.groups.add(Group.objects.get(name="risk_approver"))
        asker, decider = APIClient(), APIClient()
        asker.force_authenticate(engineer)
        decider.force_authenticate(approver)
        serving = Client(HTTP_AUTHORIZATION=f"Api-Key {key}")
        seconds = []
        for _ in range(options.repeats):
            champion = serving.get("/api/v1/models/bench/deployment/")
            target = "1" if champion.json()["champion"] == "2" else "2"
            if target == "1":
                kind, parameters = "rollback", {"to_version": "1"}
            else:
                kind, parameters = "promote_challenger", {"version": "2"}
            body = {"model": "bench", "kind": kind, "parameters": parameters, "reason": "bench"}
            asked = asker.post("/api/v1/remediations/", body, format="json")
            request_id = asked.json()["request_id"]
            started = time.perf_counter()
            decided = decider.post(
                f"/api/v1/remediations/{request_id}/approve/", {"password": PASSWORD, "reason": "ok"}
            )
            polled = serving.get("/api/v1/models/bench/deployment/", HTTP_IF_NONE_MATCH=champion.headers["ETag"])
            seconds.append(time.perf_counter() - started)
            assert decided.status_code == 200, decided.content
            assert polled.json()["champion"] == target, polled.content
    median, worst = statistics.median(seconds), max(seconds)
    print(f"last approval -> deployment endpoint serves the new champion, {options.repeats} times")
    print(f"  median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms; target < 1 s: {1 / worst:.1f}x")


if __name__ == "__main__":
    main()
