"""The event table's partitions by seq range (migration 0011): made ahead of the log, from the
append path, AUDIT_PARTITION_EVENTS seqs each.

Room is made in the appending transaction, under the log's lock, before the insert, whenever
less than half a partition is left past what is being appended: so partitions are created once
per AUDIT_PARTITION_EVENTS events, ahead of need, by whichever append gets there (the database
function `audit_partition_room` does it as the schema's owner: the application role may only
read and append). Attaching a partition takes SHARE UPDATE EXCLUSIVE on the log, which blocks
neither readers nor, beyond that moment, writers.
"""

from __future__ import annotations

import psycopg
from django.conf import settings


def room_make(raw: psycopg.Connection, head_seq: int, room: int, count: int) -> int:
    """Make room for `count` events after `head_seq` and half a partition more, when the
    partitions (which hold every seq below `room`) do not; returns the room there is then."""
    size = settings.AUDIT_PARTITION_EVENTS
    if head_seq + count + size // 2 < room:
        return room
    with psycopg.Cursor(raw) as cursor:
        row = cursor.execute("SELECT audit_partition_room(%s, %s)", (count, size)).fetchone()
    if row is None:
        raise RuntimeError("audit_partition_room returned no row")
    return int(row[0])
