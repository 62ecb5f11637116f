"""How a figure judged against a reference figure becomes a check (pure): its level from the
policy's warning and critical drops, and figures that JSON can hold."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from monitoring.runs.domain import Level

RELATIVE_ALREADY = ("rmse", "mae")  # error metrics, and coverage: their drop is a share of the reference's


def graded(check: str, metric: str, value: float, reference: float, drop: float, policy: Mapping[str, Any],
           extra: Mapping[str, Any]) -> dict:  # fmt: skip
    """The check, graded by the policy's performance drops (a share of the reference's figure
    in relative mode); a drop that is not a number (no reference figure) is reported, not judged."""
    performance = policy["performance"]
    relative_already = metric in RELATIVE_ALREADY or metric.startswith("coverage@")
    if performance.get("mode") == "relative" and reference and check != "kpis" and not relative_already:
        drop = drop / abs(reference)
    status = Level.OK
    if drop >= performance["critical_drop"]:
        status = Level.CRITICAL
    elif drop >= performance["warning_drop"]:
        status = Level.WARNING
    return {
        "check": check,
        "metric": metric,
        "value": finite(value),
        "reference": finite(reference),
        "drop": finite(drop),
        "threshold": performance["critical_drop"],
        "status": status,
        **extra,
    }


def finite(value: float) -> float | None:
    """JSON has no NaN or infinity; a figure that is not finite is recorded as null."""
    value = float(value)
    return value if math.isfinite(value) else None
