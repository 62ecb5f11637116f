"""Retraining through an external pipeline (Airflow, Kubeflow, a CI job): an HMAC-signed POST
starts it; the pipeline reports completion to remediations/{id}/callback/, signed the same way,
with a body that names the request it reports on (docs/remediation.md, "Pipeline callback"):

    {"request_id": "<the request_id it was sent>", "ok": true, "detail": {...}}

The signature covers the body, so a report captured for one request completes no other."""

from __future__ import annotations

import json
import time
from typing import Any

import requests
from django.conf import settings

from audit.errors import InvalidCommand
from monitoring.alerting.notifiers import SIGNATURE_HEADER, webhook_signature, webhook_signature_valid
from monitoring.remediation.domain import RemediationAggregate

TIMEOUT = 10.0


def retrain_submit(request: RemediationAggregate) -> dict[str, Any]:
    url = settings.PIPELINE_WEBHOOK_URL
    if not url or not settings.PIPELINE_WEBHOOK_SECRET:
        raise InvalidCommand("retraining needs PIPELINE_WEBHOOK_URL and PIPELINE_WEBHOOK_SECRET")
    body = json.dumps(
        {
            "request_id": request.request_id,
            "model": request.model,
            "action": "retrain",
            "parameters": request.parameters,
            "callback": f"/api/v1/remediations/{request.request_id}/callback/",
        },
        sort_keys=True,
    ).encode()
    signature = webhook_signature(settings.PIPELINE_WEBHOOK_SECRET, body, str(int(time.time())))
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
    response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
    if response.status_code >= 300:
        raise RuntimeError(f"the pipeline answered {response.status_code}: {response.text[:200]}")
    return {"pending": True, "submitted_to": url}


def callback_verified(body: bytes, header: str, *, max_age: int = 300) -> bool:
    return webhook_signature_valid(settings.PIPELINE_WEBHOOK_SECRET, body, header, now=time.time(), max_age=max_age)


def callback_signed_at(header: str) -> int:
    """When a verified callback was signed (Unix seconds): its signature's `t=`."""
    return int(dict(part.split("=", 1) for part in header.split(",") if "=" in part)["t"])
