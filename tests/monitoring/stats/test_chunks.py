import numpy as np
import pytest

from monitoring.stats import chunks as c


def test_chunks_by_size_keep_an_incomplete_tail():
    parts = c.chunk_by_size(10, 4)
    assert [(p.start, p.end, p.complete) for p in parts] == [(0, 4, True), (4, 8, True), (8, 10, False)]
    with pytest.raises(ValueError):
        c.chunk_by_size(10, 0)


def test_chunks_by_count_differ_by_at_most_one_row():
    parts = c.chunk_by_count(103, 10)
    assert len(parts) == 10
    assert {p.rows for p in parts} <= {10, 11}
    assert sum(p.rows for p in parts) == 103


def test_chunks_by_day_week_and_month():
    stamps = np.array(
        [
            "2026-11-01T23:00",
            "2026-11-02T01:00",
            "2026-11-02T20:00",
            "2026-11-08T10:00",
            "2026-11-09T00:00",
            "2026-12-01T00:00",
        ],
        dtype="datetime64[us]",
    )
    assert [p.key for p in c.chunk_by_period(stamps, "day")] == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-08",
        "2026-11-09",
        "2026-12-01",
    ]
    # 2026-11-02 is a Monday: Nov 1 belongs to the week of Oct 26, Nov 2..8 to one week.
    weeks = c.chunk_by_period(stamps, "week")
    assert [(w.key, w.rows) for w in weeks] == [
        ("2026-10-26", 1),
        ("2026-11-02", 3),
        ("2026-11-09", 1),
        ("2026-11-30", 1),
    ]
    assert [(m.key, m.rows) for m in c.chunk_by_period(stamps, "month")] == [("2026-11", 5), ("2026-12", 1)]
    with pytest.raises(ValueError, match="ascending"):
        c.chunk_by_period(stamps[::-1], "day")
    with pytest.raises(ValueError, match="period"):
        c.chunk_by_period(stamps, "fortnight")


def test_expected_range_from_reference_chunks():
    band = c.expected_range([0.80, 0.82, 0.81, 0.79, 0.83])
    assert band.mean == pytest.approx(0.81)
    assert band.std == pytest.approx(np.std([0.80, 0.82, 0.81, 0.79, 0.83], ddof=1))
    assert band.contains(0.81)
    assert not band.contains(0.70)
