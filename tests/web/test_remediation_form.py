"""What the request form turns its fields into (pure)."""


def test_a_requests_times_with_an_offset_are_read_in_utc():
    from monitoring.remediation.kinds import RemediationKind
    from web.remediations import _parameters

    form = {"data_start": "2026-12-01T10:00:00+02:00", "data_end": "2026-12-02T00:00:00"}
    assert _parameters(RemediationKind.RETRAIN, form) == {
        "data_start": "2026-12-01T08:00:00.000000Z",  # not 10:00 relabelled as UTC
        "data_end": "2026-12-02T00:00:00.000000Z",
    }
