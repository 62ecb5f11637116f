"""The registry's decisions that matter, taken from the log's signed events, not from the read
models alone: whether a reporting key is valid, and which versions serve.

A read model row names the event it came from (`issued_seq`, `seq`); that event is read as signed
(audit.signed) and must say what the row says, and no later signed event of the model's stream
may have changed it since (a revocation, a newer pointer). A difference means someone wrote the
database past the application: the answer is refused, the difference recorded as an integrity
failure (the Integrity page, /metrics and every notifier hear of it), naming the table and row.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from audit.envelope import read_time
from audit.selfcheck import integrity_failure_record
from audit.signed import NotAsSigned, SignedEvent, later_events, signed_event
from monitoring.registry.domain import STREAM, ApiKeyIssued, ApiKeyRevoked, DeploymentChanged
from monitoring.registry.models import Deployment, ModelApiKey

log = logging.getLogger("driftledger.security")
POINTER = ("champion", "challenger", "canary", "canary_share")


class ReadModelDiverged(Exception):
    """A read model row says what no signed event says."""

    def __init__(self, table: str, row: str, detail: str) -> None:
        super().__init__(f"{table} row {row}: {detail}")
        self.table, self.row, self.detail = table, row, detail


def key_checked(record: ModelApiKey) -> bool:
    """Whether the log says the key was issued as the row says and not revoked since. False: it
    was revoked (the row missed it). ReadModelDiverged: the row was not issued so."""
    row = f"{record.prefix} ({record.model_id})"
    issued = _event(record.issued_seq, ApiKeyIssued.type_name, ModelApiKey._meta.db_table, row)
    payload = issued.envelope["payload"]
    expires = read_time(payload["expires_at"]) if payload.get("expires_at") else None
    said = (payload.get("key_id"), payload.get("hashed_key"), payload.get("name"), expires)
    if said != (record.prefix, record.hashed_key, record.model_id, record.expiry_date):
        _diverged(ModelApiKey._meta.db_table, row, f"the key issued at seq {issued.seq} is not this one")
    for later in later_events(STREAM, record.model_id, ApiKeyRevoked.type_name, issued.seq):
        if later.envelope["payload"].get("key_id") == record.prefix:
            return False
    return True


def deployment_signed(deployment: Deployment) -> SignedEvent:
    """The signed event that set the pointer the row holds; ReadModelDiverged when the row
    differs from it, or when a later signed event of the model changed the pointer."""
    model = deployment.model_id
    event = _event(deployment.seq, DeploymentChanged.type_name, Deployment._meta.db_table, model)
    payload = event.envelope["payload"]
    if payload.get("name") != model or any(payload.get(f) != getattr(deployment, f) for f in POINTER):
        _diverged(Deployment._meta.db_table, model, f"the pointer differs from the one set at seq {event.seq}")
    newer = later_events(STREAM, model, DeploymentChanged.type_name, event.seq)
    if newer:
        _diverged(Deployment._meta.db_table, model, f"seq {newer[-1].seq} changed the pointer after seq {event.seq}")
    return event


def pointer_of(event: SignedEvent) -> dict[str, Any]:
    envelope = event.envelope
    return {
        **{field: envelope["payload"][field] for field in POINTER},
        "changed_at": envelope["occurred_at"],
        "seq": event.seq,
        "event_id": envelope["event_id"],
    }


def _event(seq: int, event_type: str, table: str, row: str) -> SignedEvent:
    try:
        event = signed_event(seq)
    except NotAsSigned as error:
        _diverged(table, row, f"the event it names is not as signed ({error})")
    if event.envelope.get("type") != event_type:
        _diverged(table, row, f"seq {seq} is a {event.envelope.get('type')}, not a {event_type}")
    return event


def _diverged(table: str, row: str, detail: str) -> NoReturn:
    diverged = ReadModelDiverged(table, row, detail)
    log.error("read model differs from the log: %s", diverged)
    integrity_failure_record(f"a read model differs from the log: {diverged}")
    raise diverged
