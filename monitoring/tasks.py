"""The app's task wiring: what every concept's Celery tasks share. The tasks themselves live in
monitoring/<concept>/tasks.py (config/celery.py discovers them)."""

from __future__ import annotations

import psycopg
from django.db import InterfaceError, OperationalError

from audit.blobs import StorageUnavailable
from audit.sequencer import OutcomeUnknown

# Worth retrying: the database, the object store or the network went away. A ProgrammingError is
# not. OutcomeUnknown is the database gone while an append waited for its seal: a command retried
# carries its expected versions, so an append that did land is not made twice.
INFRASTRUCTURE_ERRORS = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    ConnectionError,
    StorageUnavailable,
    OutcomeUnknown,
)
RETRIED = {"autoretry_for": INFRASTRUCTURE_ERRORS, "retry_backoff": True, "max_retries": 10}
# Tasks that must survive a worker's death: acknowledged only when done, redelivered if it died.
DURABLE = {**RETRIED, "acks_late": True, "reject_on_worker_lost": True}
