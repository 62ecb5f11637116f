import datetime as dt

import pytest

from audit.envelope import format_time, parse_time


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(442, 6, 9, 18, 23, 46, tzinfo=dt.UTC),  # found by schemathesis: strftime wrote "442"
        dt.datetime(2026, 11, 25, 21, 0, 0, 123456, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    ],
)
def test_times_round_trip_in_the_one_format(moment):
    text = format_time(moment)
    assert len(text) == 27 and text.endswith("Z")
    assert parse_time(text) == moment


def test_the_format_is_rfc3339_utc_with_microseconds():
    assert format_time(dt.datetime(2026, 11, 25, 21, 0, 0, 123456, tzinfo=dt.UTC)) == "2026-11-25T21:00:00.123456Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(dt.datetime(2026, 1, 1))
