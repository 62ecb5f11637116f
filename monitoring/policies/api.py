"""Policies: read a model's monitoring policy (now or at a past time) and set a new version."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.access.authentication import actor_of
from monitoring.access.permissions import ByMethod, CanRead, allow
from monitoring.access.roles import Role
from monitoring.http import validated
from monitoring.policies.services import policy_load, policy_set


class PolicyOut(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.IntegerField(help_text="0: no policy set yet, the defaults apply")
    policy = serializers.JSONField()


class PolicyIn(serializers.Serializer):
    policy = serializers.JSONField()
    reason = serializers.CharField()


class PolicyView(ByMethod, APIView):
    permissions_by_method = {
        "GET": CanRead,
        "PUT": allow(
            Role.ML_ENGINEER,
            note="a pure tightening applies at once; else 409: approval needed",
        ),
    }

    @extend_schema(
        parameters=[OpenApiParameter("at", str, description="ISO 8601 time: the policy in force then")],
        responses=PolicyOut,
        summary="The model's monitoring policy (now, or in force at a past time)",
    )
    def get(self, request, name: str):
        at = request.query_params.get("at")
        moment = serializers.DateTimeField().to_internal_value(at) if at else None
        aggregate = policy_load(name, at=moment)
        return Response({"model": name, "version": aggregate.version, "policy": aggregate.policy})

    @extend_schema(request=PolicyIn, responses=PolicyOut, summary="Set the policy (a new version)")
    def put(self, request, name: str):
        data = validated(PolicyIn, request.data)
        policy_set(model=name, policy=data["policy"], actor=actor_of(request), reason=data["reason"])
        aggregate = policy_load(name)
        return Response({"model": name, "version": aggregate.version, "policy": aggregate.policy})
