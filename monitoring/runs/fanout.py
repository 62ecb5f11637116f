"""Runs over large windows, fanned out over workers.

The run that starts (`run_execute`) plans when its window holds RUN_FANOUT_ROWS rows or more:
it fixes the batches every input reads and the policy, splits the features into groups
(`monitoring.runs.parts.feature_groups`) of RUN_FANOUT_FEATURES, or fewer where a part of that
many would not fit the memory budget, and queues one task per group. Each part loads only
its features' columns (Parquet reads the columns asked for, nothing else), measures them and
stores the measures. The part that finishes last, under the plan's row lock so that exactly one
does, queues the combining task: it loads the other columns, takes the parts' measures, and
computes and records the run as one process would, byte for byte.

A chord whose join lives in PostgreSQL: it needs no Celery result backend, and a redelivered
part or combining task finds its work done. The plan is working state, not a record: the run's
events say what was computed, and the plan is deleted once the run has its outcome.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.store import Actor
from monitoring.registry.data_schema import DataSchema, parse_schema
from monitoring.registry.models import RegisteredModel
from monitoring.runs.budget import ColumnsRead, features_per_part, run_budget_check
from monitoring.runs.models import RunFanout, RunPart
from monitoring.runs.parts import feature_groups, features_measure, parts_dump, parts_load
from monitoring.runs.services import (
    RunOutcome,
    connection_after_interruption,
    failure_reason,
    run_complete,
    run_fail,
    run_finished,
    run_inputs,
    run_result,
    run_rows,
    run_windows,
)
from monitoring.tasks import INFRASTRUCTURE_ERRORS


def fanout_start(
    run_id: str,
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    revision: int,
    actor: Actor,
    policy_version: int,
    policy: dict[str, Any],
) -> bool:
    """Plan the run's parts and queue them when its window is large enough to split (True);
    False: the run is computed in this process. A run planned before (a redelivered task)
    keeps its plan: its unfinished parts are queued again."""
    registered = RegisteredModel.objects.get(name=model)
    schema = parse_schema(registered.data_schema)
    rows = run_rows(model, start, end, policy)
    if rows.total < settings.RUN_FANOUT_ROWS:
        return False
    size = features_per_part(rows, settings.RUN_FANOUT_FEATURES)
    groups = feature_groups(schema, registered.task, policy, size)
    if len(groups) < 2:
        return False
    apart = {name for group in groups for name in group}
    combined = [name for name in schema.columns if name not in apart]
    largest = max(len(group) for group in groups)
    run_budget_check(rows, ColumnsRead(largest, largest, labels=False), "each of its parts")
    run_budget_check(rows, ColumnsRead.of(schema, combined), "its combining task")
    with transaction.atomic():
        plan, created = RunFanout.objects.get_or_create(
            run_id=run_id,
            defaults={
                "model_name": model,
                "window_start": start,
                "window_end": end,
                "revision": revision,
                "actor": actor.as_dict(),
                "policy_version": policy_version,
                "policy": json.dumps(policy),
                "inputs": json.dumps(run_inputs(model, start, end, policy)),
                "combine_columns": combined,
                "data_schema": registered.data_schema,
                "task": registered.task,
            },
        )
        if created:
            RunPart.objects.bulk_create(
                RunPart(fanout=plan, index=index, features=group) for index, group in enumerate(groups)
            )
        pending = list(plan.parts.filter(result="").order_by("index").values_list("index", flat=True))
        transaction.on_commit(lambda: _queue(run_id, pending))
    return True


def part_measure(run_id: str, index: int) -> bool:
    """Measure one part of a fanned-out run and store its measures; True when it was the last
    part to finish (the combining task is queued). A part that cannot be measured fails the run."""
    plan = RunFanout.objects.filter(run_id=run_id).first()
    if plan is None:
        return False
    if run_finished(run_id) is not None:  # failed meanwhile (another part, the sweeper): nothing to combine
        RunFanout.objects.filter(run_id=run_id).delete()
        return False
    part = plan.parts.get(index=index)
    measured = part.result
    if not measured:
        try:
            measured = _measured(plan, part.features)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as error:  # noqa: BLE001 - whatever broke a part is the run's failure
            connection_after_interruption()
            run_fail(
                run_id, f"part {index + 1} ({', '.join(part.features)}): {failure_reason(error)}", actor=_actor(plan)
            )
            RunFanout.objects.filter(run_id=run_id).delete()
            return False
    with transaction.atomic():
        locked = RunFanout.objects.select_for_update().filter(run_id=run_id).first()
        if locked is None:
            return False
        RunPart.objects.filter(fanout=locked, index=index, result="").update(result=measured)
        RunFanout.objects.filter(run_id=run_id).update(progressed_at=timezone.now())
        last = not locked.parts.filter(result="").exists()
        if last:
            transaction.on_commit(lambda: _queue(run_id, []))
    return last


def fanout_combine(run_id: str) -> RunOutcome | None:
    """Combine the measured parts into the run's result and record it; None when there is
    nothing to combine (the run was combined, or failed, before)."""
    plan = RunFanout.objects.filter(run_id=run_id).first()
    if plan is None:
        return run_finished(run_id)
    measured = list(plan.parts.order_by("index").values_list("result", flat=True))
    if not all(measured):
        return None  # a stray redelivery: the last part queues the combining task again

    def compute() -> dict[str, Any]:
        return run_result(
            plan.model_name,
            plan.window_start,
            plan.window_end,
            plan.policy_version,
            json.loads(plan.policy),
            run_id,
            json.loads(plan.inputs),
            columns=plan.combine_columns,
            feature_parts=parts_load(measured),
            schema=_schema(plan),
            task=plan.task or None,
        )

    outcome = run_complete(run_id, compute, _actor(plan))
    RunFanout.objects.filter(run_id=run_id).delete()
    return outcome


def _measured(plan: RunFanout, names: list[str]) -> str:
    policy = json.loads(plan.policy)
    schema = _schema(plan)
    windows = run_windows(
        plan.model_name,
        plan.window_start,
        plan.window_end,
        json.loads(plan.inputs),
        policy,
        schema,
        names,
        only=("reference", "predictions"),
    )
    kinds = {name: schema.features[name] for name in names}
    return parts_dump(features_measure(windows["reference"].columns, windows["predictions"].columns, kinds, policy))


def _schema(plan: RunFanout) -> DataSchema:
    raw = (
        plan.data_schema
        if plan.data_schema is not None
        else RegisteredModel.objects.get(name=plan.model_name).data_schema
    )
    return parse_schema(raw)


def _actor(plan: RunFanout) -> Actor:
    return Actor(plan.actor["kind"], plan.actor["id"], plan.actor["name"])


def _queue(run_id: str, parts: list[int]) -> None:
    from monitoring.runs.tasks import combine_run_parts, measure_run_part

    if not parts:
        combine_run_parts.delay(run_id)
    for index in parts:
        measure_run_part.delay(run_id, index)
