"""Alerts: list and read; acknowledge, resolve and silence (people); and a receiver for
Prometheus Alertmanager's webhook, so existing alerts open and resolve Driftledger alerts."""

from __future__ import annotations

import datetime as dt
import hmac

import django_filters
from django.conf import settings
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.store import Actor
from monitoring.access.authentication import actor_of
from monitoring.access.permissions import CanEngineer, CanRead, allow, anyone
from monitoring.access.roles import Role
from monitoring.alerting import services
from monitoring.alerting.domain import Resolution
from monitoring.alerting.models import Alert
from monitoring.alerting.services import Finding
from monitoring.http import ReasonIn, validated
from monitoring.registry.models import RegisteredModel
from monitoring.runs.domain import Level


class AlertOut(serializers.ModelSerializer):
    class Meta:
        model = Alert
        exclude = ["dedupe_key"]


class AlertFilter(django_filters.FilterSet):
    class Meta:
        model = Alert
        fields = ["model_name", "status", "severity", "check_name"]


class AlertListView(generics.ListAPIView):
    """Alerts, newest first; filter by model_name, status, severity, check_name."""

    permission_classes = [CanRead]
    serializer_class = AlertOut
    filterset_class = AlertFilter
    queryset = Alert.objects.order_by("-raised_seq")


class AlertDetailView(generics.RetrieveAPIView):
    permission_classes = [CanRead]
    serializer_class = AlertOut
    queryset = Alert.objects.all()
    lookup_field = "alert_id"


class SilenceIn(serializers.Serializer):
    until = serializers.DateTimeField()
    reason = serializers.CharField()


class _AlertAction(APIView):
    permission_classes = [CanEngineer]

    def _done(self, alert_id) -> Response:
        return Response(AlertOut(get_object_or_404(Alert, alert_id=alert_id)).data)


class AlertAcknowledgeView(_AlertAction):
    permission_classes = [CanRead]  # whoever is on call, in any role, may take an alert on

    @extend_schema(request=None, responses=AlertOut, summary="Acknowledge: you take the alert on")
    def post(self, request, alert_id):
        get_object_or_404(Alert, alert_id=alert_id)
        services.alert_execute(str(alert_id), lambda a: a.acknowledge(), actor=actor_of(request))
        return self._done(alert_id)


class AlertResolveView(_AlertAction):
    @extend_schema(request=ReasonIn, responses=AlertOut, summary="Resolve by hand, with a reason")
    def post(self, request, alert_id):
        data = validated(ReasonIn, request.data)
        get_object_or_404(Alert, alert_id=alert_id)
        services.alert_execute(
            str(alert_id), lambda a: a.resolve(how=Resolution.MANUAL), actor=actor_of(request), reason=data["reason"]
        )
        return self._done(alert_id)


class AlertSilenceView(_AlertAction):
    permission_classes = [
        allow(Role.ML_ENGINEER, note="up to ALERT_SILENCE_MAX_HOURS; longer is an accept_risk request")
    ]

    @extend_schema(request=SilenceIn, responses=AlertOut, summary="Hold notifications until a time, with a reason")
    def post(self, request, alert_id):
        data = validated(SilenceIn, request.data)
        get_object_or_404(Alert, alert_id=alert_id)
        now = dt.datetime.now(dt.UTC)
        bound = settings.ALERT_SILENCE_MAX_HOURS
        services.alert_execute(
            str(alert_id),
            lambda a: a.silence(data["until"], now, max_hours=bound),
            actor=actor_of(request),
            reason=data["reason"],
        )
        return self._done(alert_id)


ALERTMANAGER = Actor("service", "alertmanager", "Prometheus Alertmanager")


ALERTMANAGER_STATUSES = ["firing", "resolved"]  # named in the OpenAPI schema (ENUM_NAME_OVERRIDES)


class AlertmanagerAlertIn(serializers.Serializer):
    """One alert of Alertmanager's webhook payload; what else it carries (annotations, startsAt,
    fingerprint, ...) is not read."""

    labels = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    status = serializers.ChoiceField(choices=ALERTMANAGER_STATUSES, required=False)


class AlertmanagerIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=ALERTMANAGER_STATUSES)
    alerts = serializers.ListField(child=AlertmanagerAlertIn())


class AlertmanagerReceiverView(APIView):
    """Alertmanager's webhook_config posts here with `Authorization: Bearer <ALERTMANAGER_TOKEN>`.
    Each alert labelled with a registered `model` opens (firing) or resolves (resolved) a
    Driftledger alert keyed by its alertname and labels."""

    permission_classes = [anyone(note="with Authorization: Bearer $ALERTMANAGER_TOKEN")]
    authentication_classes: list[type] = []

    @extend_schema(request=AlertmanagerIn, responses={200: None}, summary="Alertmanager webhook receiver")
    def post(self, request):
        token = settings.ALERTMANAGER_TOKEN
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            return Response({"detail": "unknown or missing bearer token"}, status=status.HTTP_401_UNAUTHORIZED)
        data = validated(AlertmanagerIn, request.data)
        opened = resolved = 0
        with transaction.atomic():
            for item in data["alerts"]:
                labels = item["labels"]
                model = labels.get("model")
                if not model or not RegisteredModel.objects.filter(name=model).exists():
                    continue
                name = labels.get("alertname", "alert")
                segment = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("model", "alertname"))
                finding = Finding(
                    check="prometheus",
                    subject=name,
                    severity=Level.CRITICAL if labels.get("severity") == "critical" else Level.WARNING,
                    summary=f"prometheus on {segment or name}: {name}",
                    segment=segment or None,
                )
                firing = item.get("status", data["status"]) == "firing"
                events = services.alerts_from_external(model=model, finding=finding, firing=firing, actor=ALERTMANAGER)
                opened += firing and bool(events)
                resolved += (not firing) and bool(events)
        return Response({"opened": opened, "resolved": resolved})
