"""The row count of earlier windows, checked against a plain loop over the times, and the usual
count a window is compared with."""

import datetime as dt

import numpy as np

from monitoring.runs.checks import expected_rows, rows_per_window


def test_rows_per_window_counts_each_earlier_window_as_a_loop_would():
    rng = np.random.default_rng(4)
    start = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    length = dt.timedelta(hours=2)
    offsets = rng.integers(-20 * 3600 * 10**6, 3600 * 10**6, 5000)  # µs around start, some after it
    times = np.datetime64(start.replace(tzinfo=None), "us") + offsets.astype("timedelta64[us]")
    times = np.concatenate([times, [np.datetime64(start.replace(tzinfo=None) - length, "us")]])  # on a boundary
    counted = rows_per_window(times, start, length, 7)
    expected = []
    for back in range(7, 0, -1):  # oldest first: [start - back·length, start - (back-1)·length)
        low = np.datetime64((start - back * length).replace(tzinfo=None), "us")
        high = np.datetime64((start - (back - 1) * length).replace(tzinfo=None), "us")
        expected.append(int(((times >= low) & (times < high)).sum()))
    assert counted == expected


def test_the_usual_is_the_median_once_three_windows_held_data():
    assert expected_rows([0, 0, 0, 0, 0, 600, 600], 7) is None  # a new model has no usual yet
    assert expected_rows([0, 0, 0, 0, 500, 600, 700], 7) == 0.0  # the median of mostly silent hours
    assert expected_rows([580, 600, 620, 0, 610, 590, 605], 7) == 600.0
    assert expected_rows([100, 580, 600, 620], 3) == 600.0  # only the last history_windows count
