"""Segments: share shift, per-segment metrics, and rankings checked against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from monitoring.stats import segments as c
from monitoring.stats.univariate import wasserstein_normed

RNG = np.random.default_rng(5)


def test_segment_shift_finds_new_customers_entering():
    reference = c.segment_keys({"plan": np.array(["basic"] * 700 + ["pro"] * 300)})
    current = c.segment_keys({"plan": np.array(["basic"] * 400 + ["pro"] * 300 + ["student"] * 300)})
    shift = c.segment_shift(reference, current)
    assert shift[0].segment == "plan=student"
    assert shift[0].new
    assert shift[0].current_share == pytest.approx(0.3)
    basic = next(s for s in shift if s.segment == "plan=basic")
    assert (basic.reference_share, basic.current_share, basic.new) == (0.7, 0.4, False)


def test_metrics_per_segment_respect_minimum_support():
    keys = c.segment_keys({"region": np.array(["n"] * 150 + ["s"] * 50), "tier": np.array(["a"] * 200)})
    values = np.r_[np.ones(150), np.zeros(50)]
    result = c.per_segment(keys, lambda rows: float(values[rows].mean()), min_support=100)
    assert result == {"region=n|tier=a": 1.0, "region=s|tier=a": None}


def _scored(rows: int, regions: list[str], broken: str | None = None):
    region = RNG.choice(regions, size=rows)
    labels = RNG.integers(0, 2, rows)
    scores = np.clip(labels * 0.3 + RNG.normal(0.35, 0.2, rows), 0, 1)
    if broken is not None:  # the model knows nothing in this region any more
        inside = region == broken
        scores[inside] = RNG.random(int(inside.sum()))
    return c.segment_keys({"region": region}), labels, scores


def test_the_segment_whose_auc_fell_ranks_first_with_sklearns_figures():
    ref_keys, ref_y, ref_p = _scored(6_000, ["north", "south", "east"])
    cur_keys, cur_y, cur_p = _scored(6_000, ["north", "south", "east"], broken="south")
    ranking = c.rank_by_performance_drop(
        ref_keys, cur_keys, lambda i: roc_auc_score(ref_y[i], ref_p[i]), lambda i: roc_auc_score(cur_y[i], cur_p[i])
    )
    assert ranking[0].segment == "region=south"
    inside = cur_keys == "region=south"
    assert ranking[0].current == pytest.approx(roc_auc_score(cur_y[inside], cur_p[inside]), abs=1e-12)
    assert ranking[0].change > 0.2
    assert all(abs(r.change) < 0.06 for r in ranking[1:])


def test_a_segment_below_support_has_no_figure_and_ranks_last():
    ref_keys = c.segment_keys({"plan": np.array(["basic"] * 500 + ["pro"] * 500)})
    cur_keys = c.segment_keys({"plan": np.array(["basic"] * 500 + ["pro"] * 450 + ["student"] * 50)})
    ranking = c.rank_by_performance_drop(ref_keys, cur_keys, lambda i: 1.0, lambda i: 0.5, min_support=100)
    assert ranking[-1].segment == "plan=student"
    assert (ranking[-1].reference, ranking[-1].current, ranking[-1].change) == (None, None, None)
    assert (ranking[-1].reference_rows, ranking[-1].current_rows) == (0, 50)


def test_lower_is_better_metrics_rank_by_their_rise():
    ref_keys = c.segment_keys({"r": np.array(["a"] * 200 + ["b"] * 200)})
    ref_err, cur_err = np.r_[np.full(200, 1.0), np.full(200, 1.0)], np.r_[np.full(200, 1.2), np.full(200, 3.0)]
    ranking = c.rank_by_performance_drop(
        ref_keys, ref_keys, lambda i: ref_err[i].mean(), lambda i: cur_err[i].mean(), higher_is_better=False
    )
    assert [r.segment for r in ranking] == ["r=b", "r=a"]
    assert ranking[0].change == pytest.approx(2.0)


def test_segments_rank_by_drift_within_them():
    ref_region = RNG.choice(["n", "s"], size=8_000)
    cur_region = RNG.choice(["n", "s"], size=8_000)
    ref_income = RNG.normal(50, 10, 8_000)
    cur_income = RNG.normal(50, 10, 8_000) + np.where(cur_region == "s", 8.0, 0.0)
    ref_keys, cur_keys = c.segment_keys({"region": ref_region}), c.segment_keys({"region": cur_region})
    ranking = c.rank_by_drift(ref_keys, cur_keys, lambda r, k: wasserstein_normed(ref_income[r], cur_income[k]))
    assert [r.segment for r in ranking] == ["region=s", "region=n"]
    south_ref, south_cur = ref_income[ref_region == "s"], cur_income[cur_region == "s"]
    assert ranking[0].change == pytest.approx(wasserstein_normed(south_ref, south_cur), rel=1e-12)
    assert ranking[0].change > 0.7 and ranking[1].change < 0.1


@pytest.mark.parametrize("distinct", [5, 40])  # few segments: a pass over the codes each; many: one sort
def test_cohorts_give_what_every_rows_key_gives(distinct):
    """A run factorizes a segment column once (`segment_cohorts`, 4 bytes a row); the shares and
    the drift ranking are those of the keys spelled out row by row, with missing values, the
    text "None" (the key a missing value reads as), numbers, and keys that sort apart by bytes."""
    rng = np.random.default_rng(distinct)
    vocabulary = np.array(
        [None, "None", float("nan"), 3, "é", "Z", "x|y", *(f"s{i}" for i in range(distinct))], dtype=object
    )
    reference = vocabulary[rng.integers(0, vocabulary.size, 4000)]
    current = vocabulary[rng.integers(2, vocabulary.size, 5000)]
    before, after = rng.random(reference.size), rng.random(current.size) + 0.2

    def effect(ref_rows: np.ndarray, cur_rows: np.ndarray) -> float:
        assert np.all(np.diff(ref_rows) > 0) and np.all(np.diff(cur_rows) > 0)  # ascending, as a mask gives
        return wasserstein_normed(before[ref_rows], after[cur_rows]) + ref_rows.sum() * 1e-12

    keyed = c.segment_keys({"region": reference}), c.segment_keys({"region": current})
    coded = c.segment_cohorts({"region": reference}), c.segment_cohorts({"region": current})
    assert coded[0].codes.dtype == np.int32
    assert c.segment_shift(*coded) == c.segment_shift(*keyed)
    ranked = c.rank_by_drift(*coded, effect, min_support=50)
    assert ranked == c.rank_by_drift(*keyed, effect, min_support=50)
    assert sum(change.change is not None for change in ranked) > (c.FEW_SEGMENTS if distinct > 20 else 1)
    by_segment = {change.segment: change for change in ranked}  # a mixed column reads its values' text
    assert by_segment["region=None"].reference_rows == sum(v is None or v == "None" for v in reference)
    assert by_segment["region=nan"].reference_rows == sum(v != v for v in reference)


def test_segments_one_as_numpy_text_keep_the_order_they_were_first_seen_in():
    """numpy's fixed-width text, which always sorted the segments, reads "north" and "north\x00"
    as one: equal shifts then come in the order first seen, factorized or spelled out."""
    reference = np.array(["b"] * 200, dtype=object)
    current = np.array(["north\x00", "north"] * 100, dtype=object)
    for shift in (
        c.segment_shift(c.segment_cohorts({"r": reference}), c.segment_cohorts({"r": current})),
        c.segment_shift(c.segment_keys({"r": reference}), c.segment_keys({"r": current})),
    ):
        assert [share.segment for share in shift] == ["r=b", "r=north\x00", "r=north"]
    reference = np.array(["a\x00", "a"] * 50, dtype=object)  # tied across the two sides only
    shift = c.segment_shift(c.segment_cohorts({"k": reference}), c.segment_cohorts({"k": np.array(["a"] * 100)}))
    assert [share.segment for share in shift] == ["k=a\x00", "k=a"]


@pytest.mark.parametrize("piece", [1, 3, 1 << 20])
@pytest.mark.parametrize(
    "values",
    [
        ["north", None, "south", "north", float("nan"), "None", "é", "south"],
        ["a", "b", "a", 7, None, 2.5, float("nan"), "7"],  # a number after texts: every row by its str()
        [None, None],
        [],
    ],
)
def test_a_column_factorized_a_piece_at_a_time_is_what_python_reads_of_each_row(values, piece, monkeypatch):
    """Checked against each row read by Python: texts as they are (NaN missing), any other
    value making the whole column its str() (NaN then "nan"); missing rows read "None"; labels
    in the order first seen."""
    monkeypatch.setattr(c, "FACTORIZE_ROWS", piece)
    column = np.array(values, dtype=object)
    labels, codes = c._factorized(column)
    as_texts = all(v is None or isinstance(v, str) or (isinstance(v, float) and v != v) for v in values)
    spelled = [None if v is None or (as_texts and isinstance(v, float)) else v if as_texts else str(v) for v in values]
    assert labels == [*dict.fromkeys(v for v in spelled if v is not None), "None"]
    assert [labels[code] for code in codes.tolist()] == [("None" if v is None else v) for v in spelled]
    assert codes.dtype == np.int32
