"""Registry endpoints: models, versions, the deployment pointer and reporting keys.
Thin: validate the input, call a service, answer from the read models."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.signed import inclusion
from monitoring.access.authentication import actor_of
from monitoring.access.permissions import ByMethod, CanEngineer, CanRead, CanServe, allow
from monitoring.access.roles import Role
from monitoring.http import ReasonIn, validated
from monitoring.ingestion.idempotency import idempotent
from monitoring.registry import services
from monitoring.registry.data_schema import Task
from monitoring.registry.domain import DeploymentAction
from monitoring.registry.from_log import deployment_signed, pointer_of
from monitoring.registry.models import Deployment, ModelApiKey, ModelVersion, RegisteredModel
from monitoring.remediation.kinds import RemediationKind


class DeploymentOut(serializers.ModelSerializer):
    class Meta:
        model = Deployment
        fields = ["champion", "challenger", "canary", "canary_share", "changed_at", "seq", "event_id"]


class SignedEventOut(serializers.Serializer):
    seq = serializers.IntegerField()
    canonical = serializers.CharField(help_text="base64 of the event's signed bytes (canonical JSON envelope)")
    signature = serializers.CharField(help_text="base64 Ed25519 signature over those bytes")
    key_id = serializers.CharField()


class InclusionOut(serializers.Serializer):
    checkpoint = serializers.DictField(help_text="the signed checkpoint the proof leads to")
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    path = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 inclusion proof, hex")


class SignedPointerOut(serializers.Serializer):
    event = SignedEventOut()
    proof = InclusionOut()


class ServedDeploymentOut(serializers.Serializer):
    champion = serializers.CharField(allow_null=True)
    challenger = serializers.CharField(allow_null=True)
    canary = serializers.CharField(allow_null=True)
    canary_share = serializers.FloatField()
    changed_at = serializers.CharField(allow_null=True)
    seq = serializers.IntegerField()
    event_id = serializers.CharField(allow_null=True)
    signed = SignedPointerOut(
        allow_null=True,
        help_text="the DeploymentChanged event that set this pointer, as signed, with its inclusion proof "
        "against a signed checkpoint: a client holding the log's public key checks the pointer itself",
    )


class ModelOut(serializers.ModelSerializer):
    change_control = serializers.SerializerMethodField(
        help_text="approvals a remediation request of each kind needs before it changes this model"
    )

    class Meta:
        model = RegisteredModel
        fields = [
            "name",
            "task",
            "owner",
            "description",
            "data_schema",
            "schema_version",
            "retired",
            "registered_at",
            "registered_seq",
            "registered_event_id",
            "change_control",
        ]

    def get_change_control(self, model) -> dict[str, int]:
        return {kind.value: settings.REMEDIATION_APPROVALS.get(kind.value, 1) for kind in RemediationKind}


class ModelIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    task = serializers.ChoiceField(choices=Task.choices())
    owner = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    data_schema = serializers.JSONField()
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ModelListView(ByMethod, APIView):
    permissions_by_method = {"GET": CanRead, "POST": CanEngineer}

    @extend_schema(responses=ModelOut(many=True), summary="Registered models")
    def get(self, request):
        return Response(ModelOut(RegisteredModel.objects.order_by("name"), many=True).data)

    @extend_schema(request=ModelIn, responses={201: ModelOut}, summary="Register a model")
    @idempotent
    def post(self, request):
        data = validated(ModelIn, request.data)
        services.model_register(
            name=data["name"],
            task=data["task"],
            owner=data.get("owner") or request.user.username,
            description=data["description"],
            data_schema=data["data_schema"],
            actor=actor_of(request),
            reason=data["reason"] or None,
        )
        return Response(ModelOut(RegisteredModel.objects.get(name=data["name"])).data, status=status.HTTP_201_CREATED)


class ModelUpdateIn(serializers.Serializer):
    owner = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    data_schema = serializers.JSONField(required=False)
    reason = serializers.CharField()


class ModelDetailView(ByMethod, APIView):
    permissions_by_method = {
        "GET": CanRead,
        "PATCH": allow(Role.ML_ENGINEER, note="a new data schema (not only a new order): 409, approval needed"),
    }

    @extend_schema(responses=ModelOut, summary="A registered model")
    def get(self, request, name: str):
        return Response(ModelOut(get_object_or_404(RegisteredModel, name=name)).data)

    @extend_schema(request=ModelUpdateIn, responses=ModelOut, summary="Change owner, description or data schema")
    def patch(self, request, name: str):
        data = validated(ModelUpdateIn, request.data)
        reason = data.pop("reason")
        services.model_update(name=name, actor=actor_of(request), reason=reason, **data)
        return Response(ModelOut(RegisteredModel.objects.get(name=name)).data)


class ModelRetireView(APIView):
    permission_classes = [allow(Role.ML_ENGINEER, note="a model that served: 409, approval needed")]

    @extend_schema(request=ReasonIn, responses=ModelOut, summary="Retire a model: it accepts no more data")
    def post(self, request, name: str):
        data = validated(ReasonIn, request.data)
        services.model_retire(name=name, actor=actor_of(request), reason=data["reason"])
        return Response(ModelOut(RegisteredModel.objects.get(name=name)).data)


class VersionOut(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "version",
            "artifact_uri",
            "training_data_digest",
            "notes",
            "retired",
            "served",
            "registered_at",
            "registered_seq",
            "registered_event_id",
        ]


class VersionIn(serializers.Serializer):
    version = serializers.CharField(max_length=100)
    artifact_uri = serializers.CharField(max_length=2000)
    training_data_digest = serializers.CharField(max_length=200, required=False, default="")
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class VersionListView(ByMethod, APIView):
    permissions_by_method = {"GET": CanRead, "POST": CanEngineer}

    @extend_schema(responses=VersionOut(many=True), summary="A model's versions")
    def get(self, request, name: str):
        model = get_object_or_404(RegisteredModel, name=name)
        return Response(VersionOut(model.versions.order_by("registered_seq"), many=True).data)

    @extend_schema(request=VersionIn, responses={201: VersionOut}, summary="Register a trained version")
    @idempotent
    def post(self, request, name: str):
        data = validated(VersionIn, request.data)
        services.version_register(name=name, actor=actor_of(request), **data)
        version = ModelVersion.objects.get(model_id=name, version=data["version"])
        return Response(VersionOut(version).data, status=status.HTTP_201_CREATED)


class VersionRetireView(APIView):
    permission_classes = [allow(Role.ML_ENGINEER, note="a version that served: 409, approval needed")]

    @extend_schema(request=ReasonIn, responses=VersionOut, summary="Retire a version: never deployed again")
    def post(self, request, name: str, version: str):
        data = validated(ReasonIn, request.data)
        services.version_retire(name=name, version=version, actor=actor_of(request), reason=data["reason"])
        return Response(VersionOut(ModelVersion.objects.get(model_id=name, version=version)).data)


class DeploymentChangeIn(serializers.Serializer):
    action = serializers.ChoiceField(choices=DeploymentAction.choices())
    version = serializers.CharField(max_length=100, required=False, allow_null=True, default=None)
    canary_share = serializers.FloatField(required=False, allow_null=True, default=None)
    reason = serializers.CharField()


NO_DEPLOYMENT: dict[str, Any] = {
    "champion": None,
    "challenger": None,
    "canary": None,
    "canary_share": 0.0,
    "changed_at": None,
    "seq": 0,
    "event_id": None,
}


class DeploymentView(ByMethod, APIView):
    """What serving systems poll. The ETag is the seq of the last change, so `If-None-Match`
    answers 304 from one primary-key lookup."""

    permissions_by_method = {
        "GET": CanServe,
        "POST": allow(
            Role.ML_ENGINEER,
            note="first champion of a model that never served; else 409: approval needed",
        ),
    }

    @extend_schema(
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, required=False)],
        responses={
            200: ServedDeploymentOut,
            304: OpenApiResponse(description="Not modified"),
            503: OpenApiResponse(description="The pointer differs from the log's signed decision: nothing is served"),
        },
        summary="The deployment pointer: champion, challenger, canary and its share, with the signed event that set it",
    )
    def get(self, request, name: str):
        deployment = Deployment.objects.filter(model_id=name).first()
        body: dict[str, Any] | None
        if deployment is None:
            get_object_or_404(RegisteredModel, name=name)
            body, etag = {**NO_DEPLOYMENT, "signed": None}, '"0"'
        else:
            body, etag = None, f'"{deployment.seq}"'
        if etag in _etags(request.headers.get("If-None-Match", "")):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        if body is None:  # from the signed event that set it, never from the row alone
            event = deployment_signed(deployment)
            body = {**pointer_of(event), "signed": {"event": event.as_dict(), "proof": inclusion(event.seq)}}
        return Response(body, headers={"ETag": etag, "Cache-Control": "no-cache"})

    @extend_schema(
        request=DeploymentChangeIn,
        responses={200: DeploymentOut, 409: OpenApiResponse(description="The change needs an approved request")},
        summary="Set the first champion of a model that never served (any other change needs approval)",
    )
    def post(self, request, name: str):
        data = validated(DeploymentChangeIn, request.data)
        if data["action"] in ("promote", "rollback", "canary") and not data["version"]:
            return Response({"version": [f"required for {data['action']}"]}, status=status.HTTP_400_BAD_REQUEST)
        if data["action"] == "canary" and data["canary_share"] is None:
            return Response({"canary_share": ["required for canary"]}, status=status.HTTP_400_BAD_REQUEST)
        services.deployment_change(
            name=name,
            action=data["action"],
            version=data["version"],
            share=data["canary_share"],
            actor=actor_of(request),
            reason=data["reason"],
        )
        deployment = Deployment.objects.get(model_id=name)
        return Response(DeploymentOut(deployment).data, headers={"ETag": f'"{deployment.seq}"'})


class KeyOut(serializers.ModelSerializer):
    key_id = serializers.CharField(source="prefix")
    label = serializers.CharField(source="name")
    expires_at = serializers.DateTimeField(source="expiry_date")

    class Meta:
        model = ModelApiKey
        fields = ["key_id", "label", "created", "expires_at", "revoked", "issued_by"]


class KeyIssuedOut(serializers.Serializer):
    key_id = serializers.CharField()
    key = serializers.CharField(help_text="Shown once: only its hash is kept.")
    label = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class KeyIn(serializers.Serializer):
    label = serializers.CharField(max_length=50)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate_expires_at(self, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("must be in the future")
        return value


class KeyListView(ByMethod, APIView):
    permissions_by_method = {"GET": CanEngineer, "POST": CanEngineer}

    @extend_schema(responses=KeyOut(many=True), summary="A model's reporting keys (never the keys themselves)")
    def get(self, request, name: str):
        get_object_or_404(RegisteredModel, name=name)
        return Response(KeyOut(ModelApiKey.objects.filter(model_id=name).order_by("issued_seq"), many=True).data)

    @extend_schema(request=KeyIn, responses={201: KeyIssuedOut}, summary="Issue a reporting key, shown once")
    def post(self, request, name: str):
        data = validated(KeyIn, request.data)
        key_id, key = services.api_key_issue(
            name=name, label=data["label"], expires_at=data["expires_at"], actor=actor_of(request)
        )
        body = {"key_id": key_id, "key": key, "label": data["label"], "expires_at": data["expires_at"]}
        return Response(KeyIssuedOut(body).data, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class KeyRevokeView(APIView):
    permission_classes = [CanEngineer]

    @extend_schema(request=ReasonIn, responses=KeyOut, summary="Revoke a reporting key")
    def post(self, request, name: str, key_id: str):
        data = validated(ReasonIn, request.data)
        services.api_key_revoke(name=name, key_id=key_id, actor=actor_of(request), reason=data["reason"])
        return Response(KeyOut(ModelApiKey.objects.get(prefix=key_id)).data)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
