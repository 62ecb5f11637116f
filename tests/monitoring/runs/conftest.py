"""Data for runs: a reference with outcomes and a window of predictions where income moved and a
new region appeared."""

import datetime as dt

import numpy as np
import orjson
import pytest

from monitoring.ingestion.services import batch_ingest
from tests.monitoring.conftest import ALICE

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SERVICE = ALICE


def _rows(
    count: int,
    *,
    start: dt.datetime,
    shift: float = 0.0,
    new_region: float = 0.0,
    seed: int = 0,
    prefix: str = "p",
    reference: bool = False,
) -> list[dict]:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, count)
    score = 1 / (1 + np.exp(-(2 * x - 0.5)))
    region = rng.choice(["north", "south", "east"], count).astype(object)
    region[rng.random(count) < new_region] = "mars"
    rows = []
    for i in range(count):
        row = {
            "income": float(50 + 10 * x[i]),
            "debt_ratio": float(rng.random()),
            "region": str(region[i]),
            "score": float(score[i]),
            "channel": "web",
        }
        if reference:
            row["defaulted"] = int(rng.random() < score[i])
        else:
            row |= {"id": f"{prefix}-{i}", "timestamp": (start + dt.timedelta(seconds=i)).isoformat()}
        rows.append(row)
    return rows


def _ingest(kind: str, rows: list[dict]) -> None:
    batch_ingest(model="credit", kind=kind, body=orjson.dumps(rows), content_type="application/json", actor=SERVICE)


@pytest.fixture
def reported(credit_model):
    _ingest("reference", _rows(4000, start=NOW, seed=1, reference=True))
    start = NOW - dt.timedelta(hours=3)
    _ingest("predictions", _rows(3000, start=start, shift=0.8, new_region=0.2, seed=2))
    return start, start + dt.timedelta(hours=2)
