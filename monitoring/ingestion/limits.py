"""The limits a batch is held to at the door (settings, with sane defaults; docs/ingestion.md).
Pure: the services read the settings once per request and hand the limits down."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# Integers beyond this cannot be kept exactly as the float64 numbers that numeric columns hold.
EXACT_INTEGER = 2**53


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 64 * 1024 * 1024
    max_rows: int = 1_000_000
    max_columns: int = 500
    max_text_length: int = 1_000  # characters, for any text value (ids, categories, KPI names)
    max_categories: int = 10_000  # distinct values of one categorical or segment column in a batch
    earliest: dt.datetime = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # no time before this is plausible
    clock_skew: dt.timedelta = dt.timedelta(minutes=5)  # how far ahead of the server a time may be

    def latest(self, now: dt.datetime) -> dt.datetime:
        return now + self.clock_skew
