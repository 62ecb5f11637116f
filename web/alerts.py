"""Alerts and incidents: the inbox, filtered by model, level and state; an incident is the alerts
one run raised. Acknowledge, resolve and silence go through the alert services with the API's
own permission declarations, each with its reason, each a signed event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from itertools import groupby

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.dateparse import parse_datetime

from audit.errors import DomainError
from monitoring.access.authentication import actor_of
from monitoring.alerting import api, services
from monitoring.alerting.domain import AlertStatus, Resolution
from monitoring.alerting.models import Alert
from monitoring.registry.models import RegisteredModel
from monitoring.runs.domain import Level
from web.access import forbidden, may, page_view

SHOWN = 200


@page_view("alerts")
def alerts(request: HttpRequest) -> HttpResponse:
    chosen = {name: request.GET.get(name, "") for name in ("model", "severity", "status")}
    found = Alert.objects.all()
    if chosen["model"]:
        found = found.filter(model_name=chosen["model"])
    if chosen["severity"] in set(Level):
        found = found.filter(severity=chosen["severity"])
    status = chosen["status"] or "unresolved"
    found = found.exclude(status=AlertStatus.RESOLVED) if status == "unresolved" else found.filter(status=status)
    found = list(found.order_by("model_name", "-raised_seq")[:SHOWN])
    incidents = [
        (key, list(group)) for key, group in groupby(sorted(found, key=_incident), key=_incident)
    ]  # one run's alerts together, the newest run first
    incidents.sort(key=lambda pair: -max(alert.raised_seq for alert in pair[1]))
    context = {
        "incidents": incidents,
        "chosen": {**chosen, "status": status},
        "models": RegisteredModel.objects.order_by("name").values_list("name", flat=True),
        "levels": [level.value for level in Level if level.failing],
        "statuses": ["unresolved", *AlertStatus],
        "may_resolve": may(request, api.AlertResolveView.permission_classes[0]),
        "may_silence": may(request, api.AlertSilenceView.permission_classes[0]),
        "silence_hours": settings.ALERT_SILENCE_MAX_HOURS,
        "back": request.get_full_path(),
    }
    return render(request, "web/alerts.html", context)


def _incident(alert: Alert) -> tuple[str, str]:
    return (alert.model_name, alert.run_id or f"alert {alert.alert_id}")


@page_view("alerts")
def alert_action(request: HttpRequest, alert_id, action: str) -> HttpResponse:
    if request.method != "POST":
        return redirect("web:alerts")
    alert = get_object_or_404(Alert, alert_id=alert_id)
    reason = request.POST.get("reason", "").strip()
    views = {"acknowledge": api.AlertAcknowledgeView, "resolve": api.AlertResolveView, "silence": api.AlertSilenceView}
    view = views.get(action)
    if view is None:
        return redirect("web:alerts")
    permission = view.permission_classes[0]
    if not may(request, permission):
        return forbidden(request, permission.message)
    commands: dict[str, Callable] = {
        "acknowledge": lambda a: a.acknowledge(),
        "resolve": lambda a: a.resolve(how=Resolution.MANUAL),
        "silence": lambda a: a.silence(
            _until(request), dt.datetime.now(dt.UTC), max_hours=settings.ALERT_SILENCE_MAX_HOURS
        ),
    }
    try:
        if action != "acknowledge" and not reason:
            raise DomainError("a reason is required: it is signed with the change")
        services.alert_execute(str(alert.alert_id), commands[action], actor=actor_of(request), reason=reason or None)
    except (DomainError, ValueError) as refusal:
        messages.error(request, f"{alert.summary}: {refusal}")
    else:
        messages.success(request, f"{action.capitalize()}d: {alert.summary}".replace("eed:", "ed:"))
    back = request.POST.get("back", "")
    return redirect(back if back.startswith("/alerts/") else "web:alerts")


def _until(request: HttpRequest) -> dt.datetime:
    text = request.POST.get("until", "")
    until = parse_datetime(text) if text else None
    if until is None:
        raise ValueError("give the time until which notifications are held")
    return until if until.tzinfo else until.replace(tzinfo=dt.UTC)
