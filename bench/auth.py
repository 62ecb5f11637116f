"""Cost of authenticating one API request: a model's reporting key and a person's short-lived
token, against HTTP Basic with the password (the baseline: a PBKDF2 check, Django's default
cost, on every call).

Each request is GET /api/v1/models/NAME/deployment/ (what serving polls), through the whole
Django and DRF stack in this process, on the configured PostgreSQL. Median and p95 of
`--repeats` requests each; the ratio is Basic's median over the token's.

Target (issue 13): API-key and token requests < 30 ms each.

    python bench/auth.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time

from _common import ACTOR, scratch_database
from django.contrib.auth.models import Group, User
from django.test import Client

from monitoring.registry import services as registry

SCHEMA = {"numerical": ["x"], "prediction": "score"}
PASSWORD = "bench-password-long"
URL = "/api/v1/models/bench/deployment/"


def _times(client: Client, repeats: int) -> list[float]:
    assert client.get(URL).status_code == 200  # warm, and a check that it is admitted at all
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = client.get(URL)
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.content
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    options = parser.parse_args()
    with scratch_database("driftledger_bench_auth"):
        registry.model_register(name="bench", task="regression", owner="bench", data_schema=SCHEMA, actor=ACTOR)
        registry.version_register(name="bench", version="1", artifact_uri="s3://1", actor=ACTOR)
        registry.deployment_change(name="bench", action="promote", version="1", actor=ACTOR, reason="first")
        key = registry.api_key_issue(name="bench", label="serving", expires_at=None, actor=ACTOR)[1]
        person = User.objects.create_user("reader", password=PASSWORD)  # the default (production) hasher
        person.groups.add(Group.objects.get(name="auditor"))
        basic = "Basic " + base64.b64encode(f"reader:{PASSWORD}".encode()).decode()
        token = Client(HTTP_AUTHORIZATION=basic).post("/api/v1/auth/token/").json()["token"]
        clients = {
            "API key": Client(HTTP_AUTHORIZATION=f"Api-Key {key}"),
            "token": Client(HTTP_AUTHORIZATION=f"Bearer {token}"),
            "Basic (baseline)": Client(HTTP_AUTHORIZATION=basic),
        }
        medians = {}
        for name, client in clients.items():
            repeats = options.repeats if "Basic" not in name else max(options.repeats // 10, 10)
            seconds = sorted(_times(client, repeats))
            medians[name] = statistics.median(seconds)
            p95 = seconds[min(int(len(seconds) * 0.95), len(seconds) - 1)]
            print(f"{name:17s} median {medians[name] * 1e3:7.1f} ms  p95 {p95 * 1e3:7.1f} ms  ({repeats} requests)")
        ratio = medians["Basic (baseline)"] / medians["token"]
        met = all(medians[n] < 0.030 for n in ("API key", "token"))
        print(f"token vs Basic: {ratio:.0f}x faster; target < 30 ms for key and token: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
