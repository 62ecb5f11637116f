"""A person asks for a run of a window: the window's run, or (rerun) a new revision of it.

The run itself happens on a worker once the request's transaction commits; its id is known now,
so the caller can follow it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction

from audit.envelope import format_time
from audit.errors import DomainError
from audit.store import Actor
from monitoring.policies.services import policy_load
from monitoring.runs.domain import RunStatus, run_id_for
from monitoring.runs.models import Run
from monitoring.runs.tasks import run_monitoring


class StillRunning(DomainError):
    """The window's latest run has not finished: a re-run waits for it."""


@dataclass(frozen=True)
class RunRequested:
    run_id: str
    start: dt.datetime
    end: dt.datetime
    revision: int  # 0: the window's first run
    revises: str | None  # the window's first run, for a re-run


def run_request(*, model: str, start: dt.datetime, end: dt.datetime, rerun: bool, actor: Actor) -> RunRequested:
    """Queue the run of [start, end) under the model's current policy, recorded as `actor`'s.
    Without `rerun`, a window that has a run gets that run back (nothing is queued twice: runs
    are idempotent); with it, the next revision, which leaves the earlier ones as they were."""
    version = policy_load(model).version
    revision = 0
    if rerun:
        earlier = Run.objects.filter(model_name=model, policy_version=version, window_start=start, window_end=end)
        running = earlier.filter(status=RunStatus.RUNNING).values_list("run_id", flat=True).first()
        if running is not None:
            raise StillRunning(f"run {running} of this window is still running: re-run it once it has finished")
        revision = earlier.count()  # the first run is revision 0; none yet: this one is the first
    requested_by = {"kind": actor.kind, "id": actor.id, "name": actor.name}
    args = (model, format_time(start), format_time(end))
    transaction.on_commit(lambda: run_monitoring.delay(*args, requested_by=requested_by, revision=revision))
    return RunRequested(
        run_id=run_id_for(model, version, start, end, revision),
        start=start,
        end=end,
        revision=revision,
        revises=run_id_for(model, version, start, end) if revision else None,
    )
