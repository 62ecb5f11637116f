"""Run by NannyML's interpreter (not Driftledger's): the car-loan data set packaged with NannyML,
CBPE's estimated ROC AUC per chunk and its thresholds, written as JSON to the path given.
Nothing here imports Driftledger."""

import json
import sys

import nannyml as nml

CHUNK = 5_000

reference, analysis, targets = nml.load_synthetic_car_loan_dataset()
analysis = analysis.merge(targets, on="id")
common = {
    "y_pred_proba": "y_pred_proba",
    "y_pred": "y_pred",
    "y_true": "repaid",
    "problem_type": "classification_binary",
}
cbpe = nml.CBPE(**common, metrics=["roc_auc"], chunk_size=CHUNK).fit(reference)
estimated = cbpe.estimate(analysis).filter(period="analysis").to_df()
realized_calculator = nml.PerformanceCalculator(**common, metrics=["roc_auc"], chunk_size=CHUNK).fit(reference)
realized = realized_calculator.calculate(analysis).filter(period="analysis").to_df()
out = {
    "nannyml": nml.__version__,
    "reference": {c: reference[c].tolist() for c in ("y_pred_proba", "y_pred", "repaid")},
    "analysis": {c: analysis[c].tolist() for c in ("y_pred_proba", "y_pred", "repaid")},
    "chunks": [
        {
            "start": int(e[("chunk", "start_index")]),
            "end": int(e[("chunk", "end_index")]) + 1,
            "estimated": float(e[("roc_auc", "value")]),
            "alert": bool(e[("roc_auc", "alert")]),
            "lower_threshold": float(e[("roc_auc", "lower_threshold")]),
            "realized": float(r[("roc_auc", "value")]),
            "realized_lower_threshold": float(r[("roc_auc", "lower_threshold")]),
        }
        for (_, e), (_, r) in zip(estimated.iterrows(), realized.iterrows(), strict=True)
    ],
}
with open(sys.argv[1], "w") as file:
    json.dump(out, file)
