"""Reading the log as people do: newest first, filtered, a page at a time, each event told in
one sentence; and one event in full, with what it was caused by, what it caused and its
inclusion proof against the latest checkpoint."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from audit import checkpoints, events
from audit.evidence import scopes
from audit.models import Checkpoint, Event, SigningKeyRecord

MAX_PAGE = 200
PLACEHOLDER = re.compile(r"%\((size|value)\)s")
THREAD_LIMIT = 200  # consequences shown per event


class LogQueryError(ValueError):
    """A filter that names nothing the log has (an unknown scope, a stream not TYPE:ID)."""


@dataclass(frozen=True)
class LogFilter:
    scopes: tuple[tuple[str, str], ...] = ()  # registered evidence scopes, e.g. ("model", "credit")
    stream: tuple[str, str] | None = None
    event_type: str | None = None
    actor: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    correlation: uuid.UUID | None = None
    text: str | None = None  # searched in the reasons (and the rest of the envelope)
    before: int | None = None  # the cursor: only events with a smaller seq
    limit: int = 50


def log_page(query: LogFilter) -> tuple[list[dict[str, Any]], int | None]:
    """(events newest first, the cursor of the next page or None)."""
    rows = _filtered(query).order_by("-seq")[: min(query.limit, MAX_PAGE) + 1]
    found = [_summary(row) for row in rows]
    more = len(found) > min(query.limit, MAX_PAGE)
    found = found[: min(query.limit, MAX_PAGE)]
    return found, (found[-1]["seq"] if more and found else None)


def log_summaries(rows: QuerySet[Event]) -> list[dict[str, Any]]:
    """The events of `rows` in their order, each told in one sentence (no thread, no proof)."""
    return [{**_summary(row), "canonical": bytes(row.canonical).decode()} for row in rows]


def log_event(seq: int) -> dict[str, Any] | None:
    """One event in full, or None."""
    row = Event.objects.filter(seq=seq).first()
    if row is None:
        return None
    envelope = json.loads(bytes(row.canonical))
    key = SigningKeyRecord.objects.filter(key_id=row.key_id).first()
    return {
        **_summary(row),
        "canonical": bytes(row.canonical).decode(),
        "hash": bytes(row.hash).hex(),
        "leaf_hash": bytes(row.leaf_hash).hex(),
        "prev_hash": envelope.get("prev_hash"),
        "signature": base64.b64encode(bytes(row.signature)).decode(),  # as the evidence format writes it
        "key_id": row.key_id,
        "public_key": bytes(key.public_key).hex() if key else None,
        "causes": _causes(row),
        "consequences": _consequences(row),
        "proof": _proof(row.seq),
    }


def _filtered(query: LogFilter) -> QuerySet[Event]:
    rows = Event.objects.all()
    if query.before is not None:
        rows = rows.filter(seq__lt=query.before)
    if query.stream is not None:
        rows = rows.filter(stream_type=query.stream[0], stream_id=query.stream[1])
    if query.event_type:
        rows = rows.filter(event_type=query.event_type)
    if query.actor:
        rows = rows.filter(actor_id=query.actor)
    if query.since:
        rows = rows.filter(occurred_at__gte=query.since)
    if query.until:
        rows = rows.filter(occurred_at__lte=query.until)
    if query.correlation:
        rows = rows.filter(Q(correlation_id=query.correlation) | Q(event_id=query.correlation))
    for name, value in query.scopes:
        scope = {known.name: known for known in scopes()}.get(name)
        if scope is None:
            raise LogQueryError(f"no scope named {name!r}")
        size = Event.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        named = {"size": size, "value": value}
        params = [named[name] for name in PLACEHOLDER.findall(scope.streams_sql)]
        sql = PLACEHOLDER.sub("%s", scope.streams_sql)
        rows = rows.extra(  # noqa: S610 - the scope's SQL is the product's own, the values are parameters
            where=[f"(stream_type, stream_id) IN ({sql})"], params=params
        )
    if query.text:
        rows = rows.extra(where=["convert_from(canonical, 'UTF8') ILIKE %s"], params=[f"%{query.text}%"])
    return rows


def _opening(kind: str, ident: str) -> list[events.Event]:
    """The first event of a stream (what opened a request or an alert), which the sentences of
    its later events name: "approved the rollback of credit-default", not "approved request 1f2e"."""
    found = (
        Event.objects.filter(stream_type=kind, stream_id=ident, stream_version=1)
        .values_list("event_type", "schema", "payload")
        .first()
    )
    if found is None:
        return []
    try:
        return [events.parse(*found)]
    except (events.UnknownEventType, events.InvalidPayload):
        return []


def _summary(row: Event) -> dict[str, Any]:
    envelope = json.loads(bytes(row.canonical))
    return {
        "seq": row.seq,
        "event_id": str(row.event_id),
        "type": row.event_type,
        "schema": row.schema,
        "stream": {"type": row.stream_type, "id": row.stream_id, "version": row.stream_version},
        "occurred_at": envelope.get("occurred_at"),
        "actor": envelope.get("actor"),
        "reason": envelope.get("reason"),
        "correlation_id": str(row.correlation_id) if row.correlation_id else None,
        "causation_id": str(row.causation_id) if row.causation_id else None,
        "sentence": events.sentence(envelope, _opening),
        "tone": events.tone(row.event_type),
    }


def _causes(row: Event) -> list[dict[str, Any]]:
    """What led to this event, nearest first: the earlier events of its own stream (a request
    before its approvals), then its cause and the events of the cause's stream before it, and
    so on up the causation chain (an execution, the approvals it executed, the request)."""
    found: list[Event] = list(_earlier_in_stream(row))
    seen = {row.event_id, *(event.event_id for event in found)}
    cause = row.causation_id
    while cause is not None and cause not in seen and len(found) < THREAD_LIMIT:
        parent = Event.objects.filter(event_id=cause).first()
        if parent is None:
            break
        found += [parent, *(event for event in _earlier_in_stream(parent) if event.event_id not in seen)]
        seen |= {event.event_id for event in found}
        cause = parent.causation_id
    return [_summary(event) for event in sorted(found, key=lambda event: -event.seq)[:THREAD_LIMIT]]


def _consequences(row: Event) -> list[dict[str, Any]]:
    """What followed from this event, in log order: the later events of its stream, what any of
    them caused, and what that caused (a request: its approvals, the execution, the change)."""
    found = list(
        Event.objects.filter(
            stream_type=row.stream_type, stream_id=row.stream_id, stream_version__gt=row.stream_version
        ).order_by("seq")[:THREAD_LIMIT]
    )
    frontier = [row.event_id, *(event.event_id for event in found)]
    while frontier and len(found) < THREAD_LIMIT:
        children = list(Event.objects.filter(causation_id__in=frontier).order_by("seq")[: THREAD_LIMIT - len(found)])
        found += children
        frontier = [child.event_id for child in children]
    return [_summary(event) for event in sorted(found, key=lambda event: event.seq)]


def _earlier_in_stream(row: Event) -> list[Event]:
    return list(
        Event.objects.filter(
            stream_type=row.stream_type, stream_id=row.stream_id, stream_version__lt=row.stream_version
        ).order_by("-stream_version")[:THREAD_LIMIT]
    )


def _proof(seq: int) -> dict[str, Any] | None:
    """The inclusion proof against the latest checkpoint, when it covers the event."""
    checkpoint = Checkpoint.objects.order_by("-tree_size").first()
    if checkpoint is None or checkpoint.tree_size < seq:
        return None  # not yet checkpointed: beat signs one within a minute
    path = checkpoints.inclusion_proof(seq, checkpoint.tree_size)
    key = SigningKeyRecord.objects.filter(key_id=checkpoint.key_id).first()
    return {
        "leaf_index": seq - 1,
        "tree_size": checkpoint.tree_size,
        "path": [step.hex() for step in path],
        "checkpoint": {**checkpoint.as_dict(), "public_key": bytes(key.public_key).hex() if key else None},
    }
