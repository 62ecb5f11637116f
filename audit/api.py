"""Read-only audit API for auditors and external monitors, and the evidence export endpoints."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import checkpoints
from audit.evidence import EvidenceError, scopes
from audit.exports import export_download, export_start, exports_visible
from audit.log import MAX_PAGE, LogFilter, LogQueryError, log_event, log_page
from audit.models import Checkpoint, Event, EvidenceExport
from audit.permissions import EvidencePermissions, LogReadPermissions


class CheckpointSerializer(serializers.ModelSerializer):
    log_id = serializers.CharField()

    class Meta:
        model = Checkpoint
        fields = ["log_id", "tree_size", "root_hash", "timestamp", "key_id", "signature"]


class PublicReadView(APIView):
    """Checkpoints and proofs reveal hashes only; like a CT log, anyone may read them."""

    permission_classes = [AllowAny]


class LatestCheckpointView(PublicReadView):
    @extend_schema(responses=CheckpointSerializer, summary="The latest signed checkpoint")
    def get(self, request):
        checkpoint = Checkpoint.objects.order_by("-tree_size").first()
        if checkpoint is None:
            raise NotFound("the log has no checkpoint yet")
        return Response(CheckpointSerializer(checkpoint).data)


class CheckpointBySizeView(PublicReadView):
    @extend_schema(responses=CheckpointSerializer, summary="The checkpoint of a given tree size")
    def get(self, request, tree_size: int):
        checkpoint = Checkpoint.objects.filter(tree_size=tree_size).first()
        if checkpoint is None:
            raise NotFound(f"no checkpoint of tree size {tree_size}")
        return Response(CheckpointSerializer(checkpoint).data)


def _positive(request, name: str) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        raise ValidationError({name: "required"})
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: f"must be an integer, not {raw!r}"}) from None
    if value < 1:
        raise ValidationError({name: "must be at least 1"})
    return value


class InclusionProofView(PublicReadView):
    @extend_schema(
        parameters=[OpenApiParameter("seq", int, required=True), OpenApiParameter("tree_size", int, required=True)],
        responses={200: dict},
        summary="RFC 9162 inclusion proof of event seq in the tree of tree_size events",
    )
    def get(self, request):
        seq, tree_size = _positive(request, "seq"), _positive(request, "tree_size")
        try:
            path = checkpoints.inclusion_proof(seq, tree_size)
        except checkpoints.CheckpointError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        leaf = Event.objects.values_list("leaf_hash", flat=True).get(seq=seq)
        return Response(
            {
                "seq": seq,
                "leaf_index": seq - 1,
                "tree_size": tree_size,
                "leaf_hash": bytes(leaf).hex(),
                "path": [step.hex() for step in path],
            }
        )


class ConsistencyProofView(PublicReadView):
    @extend_schema(
        parameters=[OpenApiParameter("first", int, required=True), OpenApiParameter("second", int, required=True)],
        responses={200: dict},
        summary="RFC 9162 consistency proof between two tree sizes",
    )
    def get(self, request):
        first, second = _positive(request, "first"), _positive(request, "second")
        try:
            path = checkpoints.consistency_proof(first, second)
        except checkpoints.CheckpointError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response({"first": first, "second": second, "path": [step.hex() for step in path]})


class ScopedSerializer(serializers.Serializer):
    """A part of the log: each registered scope (e.g. model) as a field, and a time range."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for scope in scopes():
            self.fields[scope.name] = serializers.CharField(
                required=False, allow_blank=False, max_length=200, help_text=scope.help
            )

    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise ValidationError({"until": "must not be before since"})
        return attrs


class EvidenceRequestSerializer(ScopedSerializer):
    """The export's scope: a registered scope (e.g. model), a time range, streams."""

    streams = serializers.ListField(child=serializers.CharField(max_length=320), required=False, max_length=1000)
    include_data = serializers.BooleanField(required=False, default=False)


class EvidenceExportSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username")
    download = serializers.SerializerMethodField()

    class Meta:
        model = EvidenceExport
        fields = ["id", "status", "query", "requested_by", "events_done", "events_total", "missing_data", "sha256",
                  "error", "created_at", "finished_at", "download"]  # fmt: skip

    def get_download(self, export) -> str | None:
        if export.status != EvidenceExport.Status.DONE:
            return None
        return self.context["request"].build_absolute_uri(f"/api/v1/evidence/{export.id}/download/")


class EvidenceListView(EvidencePermissions, APIView):
    @extend_schema(
        request=EvidenceRequestSerializer,
        responses={202: EvidenceExportSerializer},
        summary="Start an evidence export (runs as a Celery task)",
    )
    def post(self, request):
        data = EvidenceRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            export = export_start(attrs=data.validated_data, user=request.user)
        except EvidenceError as exc:
            raise ValidationError({"streams": str(exc)}) from None
        body = EvidenceExportSerializer(export, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses=EvidenceExportSerializer(many=True),
        summary="Your evidence exports, newest first (administrators: everyone's)",
    )
    def get(self, request):
        exports = exports_visible(request)[:100]
        return Response(EvidenceExportSerializer(exports, many=True, context={"request": request}).data)


class EvidenceDetailView(EvidencePermissions, APIView):
    @extend_schema(responses=EvidenceExportSerializer, summary="Progress of an evidence export")
    def get(self, request, export_id: uuid.UUID):
        export = _export(request, export_id)
        return Response(EvidenceExportSerializer(export, context={"request": request}).data)


class EvidenceDownloadView(EvidencePermissions, APIView):
    @extend_schema(responses={(200, "application/zip"): bytes}, summary="Download a finished bundle")
    def get(self, request, export_id: uuid.UUID):
        export = _export(request, export_id)
        if export.status != EvidenceExport.Status.DONE:
            return Response({"detail": f"the export is {export.status}, not done"}, status=status.HTTP_409_CONFLICT)
        return export_download(export)


def _export(request, export_id) -> EvidenceExport:
    export = exports_visible(request).filter(id=export_id).first()
    if export is None:
        raise NotFound("no such evidence export")
    return export


class LogQuerySerializer(ScopedSerializer):
    """Filters of the audit log; every one optional. `before` is the cursor of the next page."""

    stream = serializers.CharField(required=False, max_length=320, help_text="TYPE:ID")
    type = serializers.CharField(required=False, max_length=100, help_text="event type, e.g. monitoring.AlertRaised")
    actor = serializers.CharField(required=False, max_length=200, help_text="the actor's id")
    correlation = serializers.UUIDField(required=False, help_text="events of one correlation (a request's thread)")
    q = serializers.CharField(required=False, max_length=200, help_text="text searched in reasons and payloads")
    before = serializers.IntegerField(required=False, min_value=1, help_text="the next page's cursor")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE, default=50)

    def validate_stream(self, value: str) -> tuple[str, str]:
        kind, sep, ident = value.partition(":")
        if not sep or not kind or not ident:
            raise ValidationError("must be TYPE:ID, e.g. model:credit-default")
        return kind, ident

    def log_filter(self) -> LogFilter:
        """The validated filters as the log reads them (call is_valid first)."""
        data = self.validated_data
        return LogFilter(
            scopes=tuple((scope.name, data[scope.name]) for scope in scopes() if data.get(scope.name)),
            stream=data.get("stream"),
            event_type=data.get("type"),
            actor=data.get("actor"),
            since=data.get("since"),
            until=data.get("until"),
            correlation=data.get("correlation"),
            text=data.get("q"),
            before=data.get("before"),
            limit=data["limit"],
        )


class EventListView(LogReadPermissions, APIView):
    @extend_schema(
        operation_id="audit_events_list",
        parameters=[LogQuerySerializer],
        responses={200: dict},
        summary="The audit log, newest first: each event in one sentence, a page at a time",
    )
    def get(self, request):
        given = LogQuerySerializer(data=request.query_params)
        given.is_valid(raise_exception=True)
        try:
            found, cursor = log_page(given.log_filter())
        except LogQueryError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        following = None
        if cursor is not None:
            params = request.query_params.copy()
            params["before"] = str(cursor)
            following = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response({"results": found, "next": following})


class EventDetailView(LogReadPermissions, APIView):
    @extend_schema(
        operation_id="audit_event_detail",
        responses={200: dict},
        summary="One event in full: its signed envelope, hash, signature and key, the thread of causes "
        "and consequences, and its inclusion proof against the latest checkpoint",
    )
    def get(self, request, seq: int):
        found = log_event(seq)
        if found is None:
            raise NotFound(f"no event with seq {seq}")
        return Response(found)
