"""Remediations: request, list, read with the full event history, and decide. Deciding
(approve, reject, review), and filing a break-glass rollback, which is carried out at once,
re-authenticate: the body carries the person's password."""

from __future__ import annotations

import django_filters
import orjson
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import Event
from monitoring.access.authentication import actor_of
from monitoring.access.permissions import ByMethod, CanDecide, CanEngineer, CanRead, CanRequest, allow, anyone
from monitoring.access.roles import Role
from monitoring.http import ReasonIn, validated
from monitoring.remediation import services
from monitoring.remediation.domain import STREAM, RemediationKind, RemediationState
from monitoring.remediation.models import Remediation
from monitoring.remediation.pipelines import SIGNATURE_HEADER, callback_signed_at, callback_verified


class RemediationOut(serializers.ModelSerializer):
    class Meta:
        model = Remediation
        fields = "__all__"


class RemediationIn(serializers.Serializer):
    model = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=RemediationKind.choices())
    parameters = serializers.DictField(required=False, default=dict)
    evidence = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text="what the request rests on: event ids, run ids or alert ids (the first one is its cause)",
    )
    reason = serializers.CharField()
    break_glass = serializers.BooleanField(
        required=False,
        default=False,
        help_text="emergency rollback by a risk approver: executed at once, reviewed after",
    )
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,  # a password is what the person typed, spaces included
        write_only=True,
        style={"input_type": "password"},
        help_text="break-glass only: re-authentication, since the rollback is carried out at once",
    )
    code = serializers.CharField(
        required=False,
        max_length=10,
        help_text="break-glass only: the authenticator's current code, when your role needs a second factor",
    )


class RemediationFilter(django_filters.FilterSet):
    class Meta:
        model = Remediation
        fields = ["model_name", "state", "kind", "break_glass"]


class RemediationListView(ByMethod, generics.ListCreateAPIView):
    serializer_class = RemediationOut
    filterset_class = RemediationFilter
    queryset = Remediation.objects.order_by("-requested_seq")

    permissions_by_method = {"GET": CanRead, "POST": CanRequest}

    @extend_schema(request=RemediationIn, responses={201: RemediationOut}, summary="Request a remediation")
    def post(self, request):
        data = validated(RemediationIn, request.data)
        refusal = services.requester_refusal(request.user, break_glass=data["break_glass"])
        if refusal is not None:
            return Response({"detail": refusal}, status=status.HTTP_403_FORBIDDEN)
        credentials = None
        if data["break_glass"]:
            if not data.get("password"):
                raise serializers.ValidationError(
                    {"password": ["a break-glass rollback is carried out at once: re-enter your password to file it"]}
                )
            credentials = services.Credentials(request.user, data["password"], data.get("code"), request._request)
        request_id = services.remediation_request(
            model=data["model"],
            kind=data["kind"],
            parameters=data["parameters"],
            evidence=data["evidence"],
            actor=actor_of(request),
            reason=data["reason"],
            break_glass=data["break_glass"],
            credentials=credentials,
        )
        return Response(
            RemediationOut(Remediation.objects.get(request_id=request_id)).data, status=status.HTTP_201_CREATED
        )


class HistoryOut(serializers.Serializer):
    seq = serializers.IntegerField()
    type = serializers.CharField()
    occurred_at = serializers.CharField()
    actor = serializers.DictField()
    reason = serializers.CharField(allow_null=True)
    payload = serializers.DictField()


class RemediationDetailOut(RemediationOut):
    history = serializers.SerializerMethodField()

    def get_history(self, obj) -> list[dict]:
        rows = Event.objects.filter(stream_type=STREAM, stream_id=str(obj.request_id)).order_by("seq")
        return [_history(row.seq, orjson.loads(bytes(row.canonical))) for row in rows]


class RemediationDetailView(APIView):
    permission_classes = [CanRead]

    @extend_schema(responses=RemediationDetailOut, summary="A remediation with its full event history")
    def get(self, request, request_id):
        return Response(RemediationDetailOut(get_object_or_404(Remediation, request_id=request_id)).data)


class DecisionIn(serializers.Serializer):
    password = serializers.CharField(
        trim_whitespace=False, style={"input_type": "password"}, help_text="re-authentication for the signature"
    )
    code = serializers.CharField(
        required=False,
        max_length=10,
        help_text="the authenticator's current code, when your role needs a second factor",
    )
    reason = serializers.CharField()


def _decision_view(decision: str, summary: str) -> type[APIView]:
    class DecisionView(APIView):
        permission_classes = [CanDecide]

        @extend_schema(
            operation_id=f"remediations_{decision}", request=DecisionIn, responses=RemediationOut, summary=summary
        )
        def post(self, request, request_id):
            data = validated(DecisionIn, request.data)
            get_object_or_404(Remediation, request_id=request_id)
            services.remediation_decide(
                request_id=str(request_id),
                decision=decision,
                user=request.user,
                password=data["password"],
                reason=data["reason"],
                request=request._request,
                code=data.get("code"),
            )
            return Response(RemediationOut(Remediation.objects.get(request_id=request_id)).data)

    DecisionView.__name__ = DecisionView.__qualname__ = f"Remediation{decision.title()}View"
    return DecisionView


RemediationApproveView = _decision_view("approve", "Approve (signed: name, time, meaning)")
RemediationRejectView = _decision_view("reject", "Reject (signed: name, time, meaning)")
RemediationReviewView = _decision_view("review", "Review a break-glass rollback after the fact (signed)")


class RemediationCancelView(APIView):
    permission_classes = [allow(Role.ML_ENGINEER, note="the requester's own request only")]

    @extend_schema(request=ReasonIn, responses=RemediationOut, summary="Withdraw your own request")
    def post(self, request, request_id):
        data = validated(ReasonIn, request.data)
        get_object_or_404(Remediation, request_id=request_id)
        services.remediation_execute(
            str(request_id), lambda r: r.cancel(request.user.username), actor=actor_of(request), reason=data["reason"]
        )
        return Response(RemediationOut(Remediation.objects.get(request_id=request_id)).data)


class RemediationRetryView(APIView):
    permission_classes = [CanEngineer]

    @extend_schema(request=None, responses=RemediationOut, summary="Execute a failed request again")
    def post(self, request, request_id):
        get_object_or_404(Remediation, request_id=request_id, state=RemediationState.FAILED)
        services.remediation_run(str(request_id))
        return Response(RemediationOut(Remediation.objects.get(request_id=request_id)).data)


class RemediationAbandonView(APIView):
    permission_classes = [CanEngineer]

    @extend_schema(request=ReasonIn, responses=RemediationOut, summary="Give up a failed request, with a reason")
    def post(self, request, request_id):
        data = validated(ReasonIn, request.data)
        get_object_or_404(Remediation, request_id=request_id)
        services.remediation_execute(
            str(request_id), lambda r: r.abandon(), actor=actor_of(request), reason=data["reason"]
        )
        return Response(RemediationOut(Remediation.objects.get(request_id=request_id)).data)


class CallbackIn(serializers.Serializer):
    request_id = serializers.UUIDField(
        help_text="the request the report is about: the URL's (a signed report completes that request only)"
    )
    ok = serializers.BooleanField()
    detail = serializers.DictField(required=False, default=dict)


class RemediationCallbackView(APIView):
    """The external pipeline reports completion, signed with the shared secret. The signed body
    names the request, so a report captured for one request completes no other."""

    permission_classes = [anyone(note="signed with PIPELINE_WEBHOOK_SECRET; the body names the request")]
    authentication_classes: list[type] = []

    @extend_schema(request=CallbackIn, responses=RemediationOut, summary="Completion report of an external pipeline")
    def post(self, request, request_id):
        if not callback_verified(request.body, request.headers.get(SIGNATURE_HEADER, "")):
            return Response({"detail": "bad or stale signature"}, status=status.HTTP_401_UNAUTHORIZED)
        data = validated(CallbackIn, _json_object(request.body))
        if data["request_id"] != request_id:
            mismatch = f"the report is about request {data['request_id']}, not {request_id}: it completes that one only"
            return Response({"detail": mismatch}, status=status.HTTP_400_BAD_REQUEST)
        get_object_or_404(Remediation, request_id=request_id)
        detail = data["detail"] if data["ok"] else {"error": data["detail"].get("error", "the pipeline failed")}
        signed_at = callback_signed_at(request.headers[SIGNATURE_HEADER])
        services.remediation_report(str(request_id), ok=data["ok"], detail=detail, signed_at=signed_at)
        return Response(RemediationOut(Remediation.objects.get(request_id=request_id)).data)


def _json_object(body: bytes) -> object:
    try:
        return orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as error:
        raise serializers.ValidationError({"detail": f"the body is not JSON: {error}"}) from error


def _history(seq: int, envelope: dict) -> dict:
    return {
        "seq": seq,
        "type": envelope["type"],
        "occurred_at": envelope["occurred_at"],
        "actor": envelope["actor"],
        "reason": envelope.get("reason"),
        "payload": envelope["payload"],
    }
