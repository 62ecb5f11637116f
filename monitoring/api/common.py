"""What the monitoring views share: who is acting, and raw-body parsers for ingestion."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.parsers import BaseParser

from audit.store import Actor
from monitoring.authentication import ModelService


def actor_of(request) -> Actor:
    user = request.user
    if isinstance(user, ModelService):
        return Actor("service", user.username, str(user))
    return Actor("user", user.username, user.get_full_name() or user.username)


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


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
