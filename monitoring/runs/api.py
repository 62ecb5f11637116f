"""Runs: trigger, list and read a model's monitoring runs."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.envelope import format_time
from monitoring.access.authentication import actor_of
from monitoring.access.permissions import ByMethod, CanEngineer, CanRead
from monitoring.http import validated
from monitoring.ingestion.limits import Limits
from monitoring.ingestion.selectors import last_rows_start
from monitoring.ingestion.services import ingest_limits
from monitoring.policies.services import policy_load
from monitoring.registry.data_schema import parse_schema
from monitoring.registry.models import RegisteredModel
from monitoring.runs.models import Run
from monitoring.runs.requests import StillRunning, run_request


class RunOut(serializers.ModelSerializer):
    class Meta:
        model = Run
        fields = "__all__"


class RunRequestIn(serializers.Serializer):
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    rerun = serializers.BooleanField(
        default=False,
        help_text="Run the window again even when it has a run under the current policy: a new revision, "
        "linked to the window's first run, which stays as it was. Without it, the window's run is returned.",
    )

    def validate(self, attrs):
        end = attrs.get("end") or dt.datetime.now(dt.UTC)
        try:
            start = attrs.get("start") or end - dt.timedelta(hours=24)  # or the policy's last N rows, see post()
        except OverflowError:
            raise serializers.ValidationError({"end": "lies at the very start of the calendar"}) from None
        if start >= end:
            raise serializers.ValidationError("start must come before end")
        return {"start": start, "end": end, "rerun": attrs.get("rerun", False)}


MAX_WINDOW = dt.timedelta(days=366)


def _refuse_implausible(window: dict, limits: Limits) -> None:
    """A window's ends lie where the model's data can (ingestion's plausible time range), and it
    spans at most MAX_WINDOW: 400 naming the bound, never a run that fails later."""
    earliest, latest = limits.earliest, limits.latest(dt.datetime.now(dt.UTC))
    for end in ("start", "end"):
        if not earliest <= window[end] <= latest:
            raise serializers.ValidationError(
                {
                    end: f"{format_time(window[end])} lies outside the plausible time range {format_time(earliest)} "
                    f"to {format_time(latest)} (INGEST_EARLIEST_TIME, or the model's earliest; now plus the clock skew)"
                }
            )
    if window["end"] - window["start"] > MAX_WINDOW:
        raise serializers.ValidationError({"start": f"a run's window spans at most {MAX_WINDOW.days} days"})


class RunRequestedOut(serializers.Serializer):
    run_id = serializers.UUIDField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    revision = serializers.IntegerField(help_text="0 for the window's first run, 1, 2, … for re-runs")
    revises = serializers.UUIDField(allow_null=True, help_text="the window's first run, for a re-run")


class ModelRunsView(ByMethod, APIView):
    permissions_by_method = {"GET": CanRead, "POST": CanEngineer}

    @extend_schema(responses=RunOut(many=True), summary="The model's runs, newest first")
    def get(self, request, name: str):
        get_object_or_404(RegisteredModel, name=name)
        return Response(RunOut(Run.objects.filter(model_name=name).order_by("-started_seq")[:200], many=True).data)

    @extend_schema(
        request=RunRequestIn,
        responses={202: RunRequestedOut, 409: None},
        summary="Run the policy on a window now (or again, with rerun)",
    )
    def post(self, request, name: str):
        registered = get_object_or_404(RegisteredModel, name=name, retired=False)
        window = validated(RunRequestIn, request.data)
        _refuse_implausible(window, ingest_limits(parse_schema(registered.data_schema)))
        policy = policy_load(name)
        if "start" not in request.data and "last_rows" in policy.policy["window"]:
            start = last_rows_start(model=name, end=window["end"], rows=policy.policy["window"]["last_rows"])
            if start is None:
                detail = f"fewer than {policy.policy['window']['last_rows']} predictions before {window['end']}"
                return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
            window["start"] = start
        try:
            requested = run_request(
                model=name, start=window["start"], end=window["end"], rerun=window["rerun"], actor=actor_of(request)
            )
        except StillRunning as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(RunRequestedOut(requested).data, status=status.HTTP_202_ACCEPTED)


class RunDetailView(APIView):
    permission_classes = [CanRead]

    @extend_schema(responses=RunOut, summary="A run: its window, policy version, checks and inputs")
    def get(self, request, run_id):
        return Response(RunOut(get_object_or_404(Run, run_id=run_id)).data)
