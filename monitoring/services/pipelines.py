"""Retraining through an external pipeline (Airflow, Kubeflow, a CI job): an HMAC-signed POST
starts it; the pipeline reports completion to remediations/{id}/callback/, signed the same way."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import requests
from django.conf import settings

from monitoring.aggregates import InvalidCommand
from monitoring.remediation import RemediationAggregate

TIMEOUT = 10.0


def signature(body: bytes, stamp: str) -> str:
    return hmac.new(settings.PIPELINE_WEBHOOK_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


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
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Driftledger-Signature": f"t={stamp},v1={signature(body, stamp)}"}
    response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
    if response.status_code >= 300:
        raise RuntimeError(f"the pipeline answered {response.status_code}: {response.text[:200]}")
    return {"pending": True, "submitted_to": url}


def callback_verified(body: bytes, header: str, *, max_age: int = 300) -> bool:
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > max_age or not settings.PIPELINE_WEBHOOK_SECRET:
        return False
    return hmac.compare_digest(given, signature(body, stamp))
