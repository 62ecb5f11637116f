"""Ingestion endpoints: models report reference data, predictions, labels and KPIs.
Bodies are JSON records, NDJSON, CSV or Parquet; a batch is stored whole or not at all."""

from __future__ import annotations

import base64
import datetime as dt

import django_filters
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.access.authentication import actor_of
from monitoring.access.permissions import CanRead, CanReport
from monitoring.ingestion.domain import BatchKind
from monitoring.ingestion.idempotency import HEADER, idempotent
from monitoring.ingestion.models import Batch
from monitoring.ingestion.services import batch_ingest
from monitoring.registry.models import RegisteredModel


class _Raw(BaseParser):
    """Hands the body over untouched: ingestion reads it with Arrow, not with DRF."""

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read() if stream is not None else b""


class JsonBody(_Raw):
    media_type = "application/json"


class NdjsonBody(_Raw):
    media_type = "application/x-ndjson"


class CsvBody(_Raw):
    media_type = "text/csv"


class ParquetBody(_Raw):
    media_type = "application/vnd.apache.parquet"


INGEST_PARSERS = [JsonBody, NdjsonBody, CsvBody, ParquetBody]


class IngestedOut(serializers.Serializer):
    seq = serializers.IntegerField(help_text="The seq of the monitoring.BatchIngested event")
    event_id = serializers.UUIDField(allow_null=True, help_text="Its event id, to cite as evidence")
    kind = serializers.CharField()
    sha256 = serializers.CharField()
    rows = serializers.IntegerField()
    time_min = serializers.CharField(allow_null=True)
    time_max = serializers.CharField(allow_null=True)
    duplicate = serializers.BooleanField(help_text="The same content was ingested before; nothing new was stored")


class ProblemOut(serializers.Serializer):
    column = serializers.CharField()
    reason = serializers.CharField()
    rows = serializers.ListField(child=serializers.IntegerField(), help_text="The first 20, counted from 0")
    count = serializers.IntegerField()


class RejectedOut(serializers.Serializer):
    detail = serializers.CharField()
    problems = ProblemOut(many=True)


STAGED: dict[str, dict[int, OpenApiResponse]] = {  # a reference batch once the model has run: joins by approval
    BatchKind.REFERENCE: {409: OpenApiResponse(description="Staged: a reference_change request adds it")}
}


def _ingest_view(kind: str, summary: str) -> type[APIView]:
    class IngestView(APIView):
        permission_classes = [CanReport]
        parser_classes = INGEST_PARSERS

        @extend_schema(
            operation_id=f"models_{kind}_create",
            summary=summary,
            request={
                "application/json": OpenApiTypes.OBJECT,
                "application/x-ndjson": OpenApiTypes.STR,
                "text/csv": OpenApiTypes.STR,
                "application/vnd.apache.parquet": OpenApiTypes.BINARY,
            },
            parameters=[OpenApiParameter(HEADER, str, OpenApiParameter.HEADER, required=False)],
            responses={201: IngestedOut, 200: IngestedOut, 400: RejectedOut, **STAGED.get(kind, {})},
            examples=[
                OpenApiExample("records", value={"records": [{"id": "p-1", "timestamp": "2026-11-25T10:00:00Z"}]})
            ],
        )
        @idempotent
        def post(self, request, name: str):
            result = batch_ingest(
                model=name, kind=kind, body=request.body, content_type=request.content_type, actor=actor_of(request)
            )
            answer = status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED
            return Response(IngestedOut(result.as_dict()).data, status=answer)

    IngestView.__name__ = IngestView.__qualname__ = f"{kind.title()}IngestView"
    return IngestView


ReferenceIngestView = _ingest_view(BatchKind.REFERENCE, "Upload the reference (baseline) data set")
PredictionsIngestView = _ingest_view(BatchKind.PREDICTIONS, "Report a batch of predictions")
LabelsIngestView = _ingest_view(BatchKind.LABELS, "Report delayed ground truth by prediction id")
KpisIngestView = _ingest_view(BatchKind.KPIS, "Report business KPIs (timestamp, kpi, value, count)")


class BatchOut(serializers.ModelSerializer):
    class Meta:
        model = Batch
        fields = ["seq", "event_id", "kind", "sha256", "rows", "schema_version", "time_min", "time_max", "ingested_at"]


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 time read in UTC: PostgreSQL refuses offsets beyond ±15:59 (a 500 otherwise)."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationError("lies outside the calendar once read in UTC") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class BatchFilter(django_filters.FilterSet):
    since = UtcDateTimeFilter(field_name="time_max", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="time_min", lookup_expr="lt")

    class Meta:
        model = Batch
        fields = ["kind"]


class BatchPages(CursorPagination):
    """A page at a time, newest first: a model reporting every minute has half a million
    batches a year, which one answer would hold (and build) at once."""

    ordering = "-seq"
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

    def get_page_size(self, request) -> int:
        given = request.query_params.get(self.page_size_query_param)
        if given is not None and not (given.isascii() and given.isdigit() and len(given) <= 9 and int(given) >= 1):
            raise serializers.ValidationError(
                {self.page_size_query_param: [f"a whole number of batches from 1 (at most {self.max_page_size:,})"]}
            )
        return super().get_page_size(request)

    def decode_cursor(self, request):
        refused = serializers.ValidationError(
            {self.cursor_query_param: ["not a cursor of this list: follow a page's `next` or `previous` link"]}
        )
        given = request.query_params.get(self.cursor_query_param)
        try:
            if given is not None:  # DRF drops what is not base64, so "%%%" would read as the first page
                base64.b64decode(given.encode("ascii"), validate=True)
            cursor = super().decode_cursor(request)
        except (ValueError, NotFound):  # DRF answers 404, as for a missing model: this is a bad request
            raise refused from None
        # The position is compared with `seq`, a number: DRF passes on whatever the cursor says.
        position = None if cursor is None else cursor.position
        if position is not None and not (position.isascii() and position.isdigit() and len(position) <= 18):
            raise refused
        return cursor


class BatchListView(generics.ListAPIView):
    """A model's batches, newest first, a page at a time; filter by kind and by a time window."""

    permission_classes = [CanRead]
    serializer_class = BatchOut
    filterset_class = BatchFilter
    pagination_class = BatchPages

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular's schema generation
            return Batch.objects.none()
        model = get_object_or_404(RegisteredModel, name=self.kwargs["name"])
        return Batch.objects.filter(model=model).order_by("-seq")
