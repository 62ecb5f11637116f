"""Labels arriving after a run: the realized performance of its window beside its estimate."""

import datetime as dt

import numpy as np
import orjson
import pytest

from audit.models import Event
from monitoring.ingestion.services import batch_ingest
from monitoring.models import Run
from monitoring.runs.services import run_execute
from tests.monitoring.conftest import ALICE
from tests.monitoring.runs.conftest import _ingest, _rows

pytestmark = pytest.mark.django_db
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _labels(rows: list[dict], *, concept: bool, seed: int) -> list[dict]:
    """Outcomes drawn from the model's own calibrated score, or (concept drift) from a coin."""
    rng = np.random.default_rng(seed)
    truth = [0.5 if concept else r["score"] for r in rows]
    return [{"id": r["id"], "defaulted": int(rng.random() < p)} for r, p in zip(rows, truth, strict=True)]


@pytest.mark.parametrize("concept", [False, True])
def test_labels_for_a_past_window_are_set_beside_the_estimate(
    credit_model, django_capture_on_commit_callbacks, concept
):
    _ingest("reference", _rows(4000, start=NOW, seed=1, reference=True))
    start = NOW - dt.timedelta(hours=3)
    rows = _rows(3000, start=start, shift=0.5, seed=2)
    _ingest("predictions", rows)
    outcome = run_execute(model="credit", start=start - dt.timedelta(minutes=1), end=NOW)
    assert Run.objects.get(run_id=outcome.run_id).realized is None
    with django_capture_on_commit_callbacks(execute=True):
        batch_ingest(
            model="credit",
            kind="labels",
            body=orjson.dumps(_labels(rows, concept=concept, seed=3)),
            content_type="application/json",
            actor=ALICE,
        )
    realized = Run.objects.get(run_id=outcome.run_id).realized
    assert realized["labelled_rows"] == 3000 and realized["metric"] == "roc_auc"
    assert realized["within_band"] == (realized["lower"] <= realized["realized"] <= realized["upper"])
    if concept:  # the estimate cannot see it: realized performance falls far below the band
        assert realized["realized"] < 0.6 and realized["realized"] < realized["lower"] and not realized["within_band"]
    else:  # covariate shift only: the estimate made without labels was close (its coverage: test_estimation.py)
        assert abs(realized["realized"] - realized["estimated"]) < 0.04
    with django_capture_on_commit_callbacks(execute=True):  # no new labelled rows: nothing new to record
        batch_ingest(
            model="credit",
            kind="labels",
            body=orjson.dumps(_labels(rows[:10], concept=concept, seed=4)),
            content_type="application/json",
            actor=ALICE,
        )
    assert Event.objects.filter(event_type="monitoring.PerformanceRealized").count() == 1
