"""Label-free estimation against NannyML's CBPE on the same chunks of NannyML's car-loan data
set (50,000 reference rows, 10 analysis chunks of 5,000; scores with 101 distinct values):
mean absolute error of the estimated ROC AUC against the realized one, and which chunks each
flags, beside the chunks whose realized ROC AUC falls below the reference threshold (mean minus
3 standard deviations of the reference chunks' realized AUC: NannyML's default). Driftledger's
flags come from its run checks (`estimated_checks`, default policy), NannyML's from `alert`.
Then the cost of estimating at 1,000,000 rows against computing the realized AUC there.

NannyML lives in an interpreter of its own (it pins other versions of pandas and numpy):

    python3 -m venv /tmp/nannyml && /tmp/nannyml/bin/pip install nannyml statsmodels
    NANNYML_PYTHON=/tmp/nannyml/bin/python .venv/bin/python bench/estimation.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import median_time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from monitoring.policies.document import DEFAULT_POLICY
from monitoring.registry.data_schema import DataSchema
from monitoring.runs.estimation_checks import estimated_checks
from monitoring.stats.performance import roc_auc

SCHEMA = DataSchema(numerical=("x",), categorical=(), prediction="y_pred", score="y_pred_proba", target="repaid")


def _nannyml() -> dict:
    python = os.environ.get("NANNYML_PYTHON")
    if not python:
        sys.exit("set NANNYML_PYTHON to an interpreter with nannyml installed (see this file's docstring)")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "nannyml.json"
        subprocess.run([python, str(Path(__file__).with_name("_nannyml_side.py")), str(out)], check=True,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        return json.loads(out.read_text())


def _columns(side: dict, rows: slice = slice(None)) -> dict[str, np.ndarray]:
    return {name: np.asarray(values, dtype=float)[rows] for name, values in side.items()}


def main() -> None:
    data = _nannyml()
    reference = _columns(data["reference"])
    ours, theirs, realized, below, flagged_ours, flagged_theirs = [], [], [], [], [], []
    for number, chunk in enumerate(data["chunks"]):
        window = _columns(data["analysis"], slice(chunk["start"], chunk["end"]))
        (check,) = estimated_checks(reference, window, "repaid", SCHEMA, "binary_classification", DEFAULT_POLICY)
        actual = roc_auc(window["repaid"], window["y_pred_proba"])
        ours.append(check["value"])
        theirs.append(chunk["estimated"])
        realized.append(actual)
        if actual < chunk["realized_lower_threshold"]:
            below.append(number)
        if check["status"] != "ok":
            flagged_ours.append(number)
        if chunk["alert"]:
            flagged_theirs.append(number)
    error_ours = float(np.mean(np.abs(np.subtract(ours, realized))))
    error_theirs = float(np.mean(np.abs(np.subtract(theirs, realized))))
    print(f"NannyML {data['nannyml']} car-loan data, {len(realized)} chunks of 5,000 rows")
    print(f"  ROC AUC estimate MAE: Driftledger {error_ours:.6f}, NannyML CBPE {error_theirs:.6f} "
          f"(ratio {error_ours / error_theirs:.4f}; target <= 1)")  # fmt: skip
    print(f"  chunks whose realized AUC is below the reference threshold: {below}")
    print(f"  flagged from the estimate: Driftledger {flagged_ours}, NannyML {flagged_theirs}; "
          f"missed by Driftledger: {sorted(set(below) - set(flagged_ours)) or 'none'}")  # fmt: skip
    _cost()


def _cost() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, 1_000_000)
    score = 1 / (1 + np.exp(-(2 * x - 1)))
    reference = {"y_pred_proba": score[:100_000], "repaid": (rng.random(100_000) < score[:100_000]) * 1.0,
                 "y_pred": (score[:100_000] >= 0.5) * 1.0}  # fmt: skip
    current = {"y_pred_proba": score, "y_pred": (score >= 0.5) * 1.0}
    labels = (rng.random(score.size) < score) * 1.0
    check = median_time(
        estimated_checks, reference, current, "repaid", SCHEMA, "binary_classification", DEFAULT_POLICY
    )[0]
    realized = median_time(roc_auc, labels, score)[0]
    print(f"  1,000,000 rows (reference 100,000): estimation check {check * 1000:.0f} ms, realized ROC AUC "
          f"{realized * 1000:.0f} ms ({check / realized:.2f}x the realized figure)")  # fmt: skip


if __name__ == "__main__":
    main()
