from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.ingestion.selectors import IDS
from monitoring.stats.quality import Finding, duplicate_findings, quality_findings

RNG = np.random.default_rng(5)


def _kinds(findings):
    return {(f.kind, f.column) for f in findings}


def test_a_clean_window_has_no_findings():
    reference = {"income": RNG.normal(50, 10, 1000), "region": np.array(["n", "s", "e", "w"] * 250, dtype=object)}
    current = {
        "income": np.clip(RNG.normal(50, 10, 800), 20, 80),
        "region": np.array(["n", "s", "e", "w"] * 200, dtype=object),
    }
    assert quality_findings(reference, current) == []


def test_schema_nulls_range_categories_constants_and_duplicates_are_found():
    reference = {
        "income": np.linspace(10, 100, 1000),
        "age": np.linspace(18, 90, 1000),
        "region": np.array(["north", "south", "east", "west"] * 250, dtype=object),
        "score": np.linspace(0, 1, 1000),
        "dropped": np.ones(1000),
        "id": np.arange(1000),
    }
    income = np.linspace(10, 100, 500)
    income[:100] = np.nan
    income[100:103] = [-5.0, 250.0, 1e6]
    current = {
        "income": income,
        "age": np.full(500, 40.0),
        "region": np.array(["north", "south", "mars"] * 166 + ["north", "south"], dtype=object),
        "score": np.array(["high"] * 500, dtype=object),
        "added": np.zeros(500),
        "id": np.r_[np.arange(498), [7, 7]],
    }
    findings = quality_findings(reference, current, id_column="id")
    kinds = _kinds(findings)
    assert (Finding.MISSING_COLUMN, "dropped") in kinds
    assert (Finding.NEW_COLUMN, "added") in kinds
    assert (Finding.TYPE_CHANGE, "score") in kinds
    null = next(f for f in findings if f.kind is Finding.NULL_RATE)
    assert (null.column, null.count, null.share) == ("income", 100, 0.2)
    out = next(f for f in findings if f.kind is Finding.OUT_OF_RANGE)
    assert (out.column, out.count, out.examples) == ("income", 3, (-5.0, 250.0, 1e6))
    assert (Finding.CONSTANT, "age") in kinds
    new = next(f for f in findings if f.kind is Finding.NEW_CATEGORY)
    assert (new.count, new.examples) == (166, ("mars",))
    vanished = next(f for f in findings if f.kind is Finding.VANISHED_CATEGORY)
    assert vanished.examples == ("east", "west")
    duplicates = next(f for f in findings if f.kind is Finding.DUPLICATE_ID)
    assert (duplicates.count, duplicates.examples) == (3, (7,))


def test_quantile_range_flags_the_tails():
    reference = {"x": np.arange(1000, dtype=float)}
    current = {"x": np.array([5.0, 500.0, 995.0])}
    assert quality_findings(reference, current) == []
    (finding,) = quality_findings(reference, current, range_quantiles=(0.01, 0.99))
    assert finding.count == 2


SPELLINGS = ("id-", "é", "Ä-", "😀", "a\x00", "", "a-long-prefix-past-sixteen-bytes-")


@settings(max_examples=120, deadline=None, derandomize=True)
@given(st.integers(0, 400), st.integers(0, 10_000), st.booleans(), st.booleans())
def test_duplicate_text_ids_are_what_a_count_of_every_id_finds(rows, seed, missing, compact):
    """Both text paths (Python strings by Arrow's hash, numpy's compact strings as a run reads
    its ids, by a sort, of a copy or in place) count only the repeated ids; checked against Python's own count of all,
    with texts that sort differently by code point and by byte, and missing ids."""
    rng = np.random.default_rng(seed)
    spelled = [
        SPELLINGS[p] + str(v)
        for p, v in zip(rng.integers(0, 7, rows), rng.integers(0, max(rows, 1), rows), strict=True)
    ]
    ids = np.array(spelled, dtype=object)
    if missing and rows:
        ids[rng.random(rows) < 0.2] = None
    if compact:
        ids = ids.astype(IDS)
    counted = Counter(v for v in ids.tolist() if v is not None)
    found = duplicate_findings("id", ids)
    assert duplicate_findings("id", ids.copy(), reorder=True) == found  # sorted in place: the same count
    repeated = sorted(v for v, n in counted.items() if n > 1)
    if not repeated:
        assert found == []
        return
    (finding,) = found
    assert finding.count == sum(counted[v] for v in repeated)
    assert finding.share == finding.count / rows
    assert finding.examples == tuple(repeated[:5])
    assert finding.detail == f"{len(repeated)} ids appear more than once"


def test_duplicate_ids_of_mixed_kinds_are_counted_on_their_text():
    (finding,) = duplicate_findings("id", np.array(["7", 7, 8, None, 9.5, "9.5"], dtype=object))
    assert (finding.count, finding.examples) == (4, ("7", "9.5"))


def test_duplicate_ids_that_differ_by_a_trailing_nul_or_as_bytes_are_told_apart():
    assert duplicate_findings("id", np.array(["a", "a\x00"], dtype=object)) == []
    (finding,) = duplicate_findings("id", np.array(["a", "a", "a\x00", "a\x00"], dtype=object))
    assert (finding.count, finding.examples) == (4, ("a", "a\x00"))
    (finding,) = duplicate_findings("id", np.array([b"x", b"x", "y"], dtype=object))
    assert (finding.count, finding.examples) == (2, ("b'x'",))  # bytes: counted on their text, as before
