"""The evidence export task as a worker runs it, on committed data, seen from other connections:
what the API and the web page read while it runs."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import User
from django.db import DEFAULT_DB_ALIAS, connections

from audit import evidence
from audit.models import EvidenceExport
from audit.store import NewEvent, append
from audit.tasks import export_evidence_task
from tests.audit.factories import ALICE, Noted


def _seen_elsewhere(export_id: str) -> tuple:
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT status, events_done, events_total FROM audit_evidence_export WHERE id = %s", [export_id]
            )
            return cursor.fetchone()
    finally:
        other.close()


def test_an_exports_progress_is_seen_while_it_runs(committed_log, monkeypatch):
    """The export reads the log in one transaction; its progress is written outside it, so that
    the API's events_done moves while the bundle is written, not only once it is done."""
    stream = str(uuid.uuid4())
    append(
        [NewEvent("note", stream, Noted(model="credit", summary=f"n{i}"), ALICE) for i in range(7)],
        expected={("note", stream): 0},
    )
    user = User.objects.create_user("ada", password="unused-here")
    export = EvidenceExport.objects.create(id=uuid.uuid4(), requested_by=user, query={})
    seen = []
    writing = evidence.render_report

    def observed(timeline, *args):  # the events are written; the report is next, in the same transaction
        seen.append(_seen_elsewhere(str(export.id)))
        return writing(timeline, *args)

    monkeypatch.setattr(evidence, "render_report", observed)
    export_evidence_task.apply(args=[str(export.id)])
    export.refresh_from_db()
    assert export.status == "done" and export.events_done == export.events_total == 7
    assert seen == [("running", 7, 7)]
