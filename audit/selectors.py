"""Reads of the event store."""

from __future__ import annotations

import datetime as dt

from audit import events
from audit.events import Event
from audit.models import SigningKeyRecord
from audit.verification import KeyRange


def signing_keys() -> list[KeyRange]:
    """Every key of the log with the seq range it signs (valid_to_seq None: current key)."""
    records = list(SigningKeyRecord.objects.order_by("valid_from_seq"))
    return [
        KeyRange(
            key_id=record.key_id,
            public_raw=bytes(record.public_key),
            valid_from_seq=record.valid_from_seq,
            valid_to_seq=records[index + 1].valid_from_seq - 1 if index + 1 < len(records) else None,
        )
        for index, record in enumerate(records)
    ]


def stream_version(stream_type: str, stream_id: str) -> int:
    """The stream's current version; 0 when it has no event yet (from the key table: one index,
    however many partitions the log has)."""
    from django.db.models import Max

    from audit.models import EventKey

    found = EventKey.objects.filter(stream_type=stream_type, stream_id=stream_id).aggregate(v=Max("stream_version"))
    return found["v"] or 0


def stream_events(stream_type: str, stream_id: str, *, until: dt.datetime | None = None) -> list[tuple[Event, str]]:
    """The stream's events in version order, typed and upcast to their latest schema, each with
    its actor's id, up to the moment `until` when given: what aggregates fold."""
    from audit.models import Event as EventRow

    rows = EventRow.objects.filter(stream_type=stream_type, stream_id=stream_id)
    if until is not None:
        rows = rows.filter(occurred_at__lte=until)
    return [
        (events.parse(kind, schema, payload).upcast(), actor_id)
        for kind, schema, payload, actor_id in rows.order_by("stream_version").values_list(
            "event_type", "schema", "payload", "actor_id"
        )
    ]
