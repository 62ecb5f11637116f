"""The log verifies itself on a schedule, records the outcome and alerts on a failure.

`log_verify_recorded` runs the full verification `audit_verify` runs (audit.verify.verify_log) and
also holds the log against every signed checkpoint stored in the database and every copy a
directory witness holds. Its row in audit_log_verification is written when it starts and completed
when it ends. A failure (a bad seq, or an error that stopped the verification) calls the handlers
named in settings.AUDIT_VERIFY_FAILURE_HANDLERS; `LogVerificationCollector` shows the latest
outcome on /metrics, where Prometheus alerts on a failure and on verifications that stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from prometheus_client.core import GaugeMetricFamily

from audit.cosigning import held_checkpoints
from audit.models import Checkpoint, LogInfo, LogVerification
from audit.verify import Verified, VerifyReport, verify_log
from audit.witnesses import DirectoryWitness, configured_witnesses, read_witnessed

logger = logging.getLogger(__name__)

VERIFICATION_LOCK_KEY = 0x76657269  # "veri"


class VerificationRunning(RuntimeError):
    """Another verification started recently and has not finished."""


def log_verify_recorded(
    *, unless_running_within: dt.timedelta | None = None, workers: int | None = None, incremental: bool = False
) -> LogVerification:
    """Verify the whole log and return its recorded outcome. `incremental`: only the events after
    the head of the latest verification that passed (the whole log when none has), chained to it;
    the witnesses' checkpoints are then left to the full verification, which reads every leaf.

    The running row is committed before the verification starts, so it must not be called inside
    a transaction. With `unless_running_within`, raises VerificationRunning instead when another
    verification started less than that ago is still running (checked under a lock). An
    unexpected exception is recorded as a failure (its type and message), handed to the failure
    handlers and re-raised.
    """
    verification = _begin(unless_running_within)
    try:
        after = last_verified() if incremental else None
        checkpoints = [] if after else known_checkpoints()[0]
        report = verify_log(workers=workers or _default_workers(), witnessed=checkpoints or None, after=after)
        _record_report(verification, report, checkpoints=len(checkpoints))
    except Exception as exc:
        _record_error(verification, exc)
        _call_failure_handlers(verification)
        raise
    if not verification.ok:
        logger.error("the full verification of the audit log failed: %s", verification.problem)
        _call_failure_handlers(verification)
    return verification


def _begin(unless_running_within: dt.timedelta | None) -> LogVerification:
    with transaction.atomic(durable=True):
        if unless_running_within is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [VERIFICATION_LOCK_KEY])
            since = timezone.now() - unless_running_within
            running = LogVerification.objects.filter(finished_at=None, started_at__gt=since).first()
            if running is not None:
                raise VerificationRunning(
                    f"verification {running.id}, started at {running.started_at:%Y-%m-%d %H:%M:%S} UTC, is running"
                )
        return LogVerification.objects.create(started_at=timezone.now())


def last_verified() -> Verified | None:
    """The head of the latest verification that passed: where an incremental one starts. One of
    the empty log has no head: there is no event 0 to chain to, so the next one checks everything."""
    passed = LogVerification.objects.filter(ok=True, events_checked__gt=0).exclude(head_hash="")
    latest = passed.order_by("-finished_at", "-id").first()
    return Verified(latest.events_checked, latest.head_hash) if latest else None


def _default_workers() -> int | None:
    """One process per core, except in a daemonic process (a Celery prefork child), which may
    not start processes of its own: there the verification runs in the process itself."""
    return 1 if multiprocessing.current_process().daemon else None


def known_checkpoints(directories: Sequence[Path] = ()) -> tuple[list[dict], list[str]]:
    """Every checkpoint a witness holds (the directories given, the configured directory witnesses,
    the last one each cosigning witness cosigned) and every checkpoint stored in the database,
    each distinct one once, labelled by where it was found; and the witnesses that could not be
    asked. A witness copy that differs from the stored one is checked on its own."""
    found: dict[bytes, dict] = {}

    def add(body: dict, source: str) -> None:
        signed = {name: value for name, value in body.items() if name != "_source"}
        found.setdefault(orjson.dumps(signed, option=orjson.OPT_SORT_KEYS), {**signed, "_source": source})

    paths = [*directories]
    paths += [Path(w.path) for w in configured_witnesses() if isinstance(w, DirectoryWitness) and w.path not in paths]
    for path in paths:
        for body in read_witnessed(path):
            add(body, "witnessed checkpoint")
    info = LogInfo.objects.first()
    held, unreachable = held_checkpoints(str(info.log_id)) if info else ([], [])
    for body in held:
        add(body, body["_source"])
    for checkpoint in Checkpoint.objects.order_by("tree_size").iterator():
        add(checkpoint.as_dict(), "stored checkpoint")
    return list(found.values()), unreachable


def _record_report(verification: LogVerification, report: VerifyReport, *, checkpoints: int) -> None:
    verification.finished_at = timezone.now()
    verification.ok = report.ok
    verification.events_checked = report.events
    verification.first_seq = report.first_seq
    verification.keys_checked = report.keys
    verification.checkpoints_checked = checkpoints if report.ok else 0
    verification.head_hash = report.head_hash if report.ok else ""
    if report.failure is not None:
        verification.failed_seq = report.failure.seq
        verification.problem = str(report.failure)
    verification.save()


def _record_error(verification: LogVerification, exc: Exception) -> None:
    logger.exception("the full verification of the audit log stopped with an error")
    verification.finished_at = timezone.now()
    verification.ok = False
    verification.failed_seq, verification.checkpoints_checked, verification.head_hash = None, 0, ""
    verification.problem = f"{type(exc).__name__}: {exc}"
    try:
        verification.save()
    except Exception:  # the database may be what failed; the handlers still hear of it
        logger.exception("could not record the failure of log verification %s", verification.id)


def integrity_failure_is_latest(problem: str) -> bool:
    """Whether `problem` is already the latest recorded outcome (found again: not repeated)."""
    latest = LogVerification.objects.exclude(finished_at=None).order_by("-finished_at", "-id").first()
    return latest is not None and latest.ok is False and latest.problem == problem


def integrity_failure_record(problem: str) -> LogVerification:
    """A failure found outside a verification (the checkpointer refusing to sign, read models that
    differ from the log), recorded as a failed one and handed to the failure handlers: the
    Integrity page, /metrics and every notifier hear of it. The same problem found again while it
    is the latest outcome is not repeated."""
    if integrity_failure_is_latest(problem):
        return LogVerification.objects.exclude(finished_at=None).order_by("-finished_at", "-id").first()
    now = timezone.now()
    failure = LogVerification.objects.create(started_at=now, finished_at=now, ok=False, problem=problem)
    logger.error("the audit log's integrity: %s", problem)
    _call_failure_handlers(failure)
    return failure


def _call_failure_handlers(verification: LogVerification) -> None:
    for path in getattr(settings, "AUDIT_VERIFY_FAILURE_HANDLERS", []):
        try:
            import_string(path)(verification)
        except Exception:  # one handler failing must not stop the others
            logger.exception("log verification %s: failure handler %s raised", verification.id, path)


class LogVerificationCollector:
    """The latest finished verification, read at scrape time (registered where /metrics is
    served: monitoring.alerting.metrics). No samples until a verification has finished."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        finished = LogVerification.objects.exclude(finished_at=None).order_by("-finished_at", "-id")
        latest = finished.filter(first_seq=1).first()  # the full ones; incremental ones are counted below
        verified = finished.filter(ok=True).values_list("events_checked", flat=True).first()
        ok = GaugeMetricFamily(
            "driftledger_log_verification_ok", "1 if the latest full verification of the audit log passed, 0 if not"
        )
        last = GaugeMetricFamily(
            "driftledger_log_verification_last_timestamp_seconds",
            "When the latest full verification of the audit log finished (Unix time)",
        )
        events = GaugeMetricFamily(
            "driftledger_log_verification_events", "Events in the log as the latest full verification saw it"
        )
        duration = GaugeMetricFamily(
            "driftledger_log_verification_duration_seconds", "How long the latest full verification took"
        )
        if latest is not None and latest.finished_at is not None:
            ok.add_metric([], 1 if latest.ok else 0)
            last.add_metric([], latest.finished_at.timestamp())
            events.add_metric([], latest.events_checked)
            duration.add_metric([], latest.seconds)
        head = GaugeMetricFamily(
            "driftledger_log_verified_seq",
            "The last seq a passing verification (full or incremental) reached",
        )
        if verified is not None:
            head.add_metric([], verified)
        yield ok
        yield last
        yield events
        yield duration
        yield head
