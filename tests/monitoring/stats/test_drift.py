import numpy as np
import pytest

from monitoring.stats.drift import drift_report

RNG = np.random.default_rng(9)


def _frame(rows: int, shift: float = 0.0, new_share: float = 0.0) -> dict:
    region = RNG.choice(["n", "s", "e"], size=rows).astype(object)
    region[RNG.random(rows) < new_share] = "mars"
    income = RNG.normal(50 + shift * 10, 10, rows)
    income[:10] = np.nan
    return {"income": income, "age": RNG.normal(40, 12, rows), "region": region}


KINDS = {"income": "numerical", "age": "numerical", "region": "categorical"}


def test_report_flags_the_shifted_and_new_category_features_only():
    report = {r.feature: r for r in drift_report(_frame(50_000), _frame(50_000, shift=0.3, new_share=0.2), KINDS)}
    assert report["income"].decision.drifted
    assert report["region"].decision.drifted
    assert report["region"].measures.new_categories == ("mars",)
    assert not report["age"].decision.drifted
    assert report["income"].missing_current.count == 10


def test_unknown_kinds_are_refused():
    with pytest.raises(ValueError, match="kind must be"):
        drift_report(_frame(100), _frame(100), {"age": "ordinal"})
