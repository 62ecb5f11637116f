"""People and roles (administrators): list, register, grant and revoke roles with a reason,
deactivate and reactivate. Each change is a signed event in the audit log."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.access import services
from monitoring.access.authentication import TokenAuthentication, actor_of, token_issue
from monitoring.access.domain import Role
from monitoring.access.permissions import CanAdminister, CanRead
from monitoring.http import ReasonIn, validated


class PersonOut(serializers.Serializer):
    username = serializers.CharField()
    full_name = serializers.CharField(source="get_full_name")
    email = serializers.CharField()
    active = serializers.BooleanField(source="is_active")
    roles = serializers.SerializerMethodField()
    last_login = serializers.DateTimeField(allow_null=True)

    def get_roles(self, user) -> list[str]:
        return sorted(user.groups.filter(name__in=list(Role)).values_list("name", flat=True))


class PersonIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    full_name = serializers.CharField(max_length=150, help_text="printed on the person's electronic signatures")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    password = serializers.CharField(style={"input_type": "password"}, write_only=True)
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices()), required=False, default=list)
    reason = serializers.CharField()


class RoleIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices())
    reason = serializers.CharField()


class PeopleView(APIView):
    permission_classes = [CanAdminister]

    @extend_schema(responses=PersonOut(many=True), summary="Everyone with an account, with their roles")
    def get(self, request):
        return Response(PersonOut(User.objects.order_by("username"), many=True).data)

    @extend_schema(request=PersonIn, responses={201: PersonOut}, summary="Register a person, with roles")
    def post(self, request):
        data = validated(PersonIn, request.data)
        services.person_register(
            username=data["username"],
            full_name=data["full_name"],
            email=data["email"] or None,
            password=data["password"],
            roles=data["roles"],
            actor=actor_of(request),
            reason=data["reason"],
        )
        person = User.objects.get(username=data["username"])
        return Response(PersonOut(person).data, status=status.HTTP_201_CREATED)


class PersonView(APIView):
    permission_classes = [CanAdminister]

    @extend_schema(responses=PersonOut, summary="A person and their roles")
    def get(self, request, username: str):
        return Response(PersonOut(get_object_or_404(User, username=username)).data)


class RoleGrantView(APIView):
    permission_classes = [CanAdminister]

    @extend_schema(request=RoleIn, responses=PersonOut, summary="Grant a role, with a reason (never to yourself)")
    def post(self, request, username: str):
        data = validated(RoleIn, request.data)
        services.role_grant(username=username, role=data["role"], actor=actor_of(request), reason=data["reason"])
        return Response(PersonOut(User.objects.get(username=username)).data)


class RoleRevokeView(APIView):
    permission_classes = [CanAdminister]

    @extend_schema(request=ReasonIn, responses=PersonOut, summary="Revoke a role, with a reason")
    def post(self, request, username: str, role: str):
        data = validated(ReasonIn, request.data)
        services.role_revoke(username=username, role=role, actor=actor_of(request), reason=data["reason"])
        return Response(PersonOut(User.objects.get(username=username)).data)


class DeactivateView(APIView):
    permission_classes = [CanAdminister]

    @extend_schema(request=ReasonIn, responses=PersonOut, summary="Deactivate: no sign-in, no action, history kept")
    def post(self, request, username: str):
        data = validated(ReasonIn, request.data)
        services.person_deactivate(username=username, actor=actor_of(request), reason=data["reason"])
        return Response(PersonOut(User.objects.get(username=username)).data)


class ReactivateView(APIView):
    permission_classes = [CanAdminister]

    @extend_schema(request=ReasonIn, responses=PersonOut, summary="Reactivate a deactivated person")
    def post(self, request, username: str):
        data = validated(ReasonIn, request.data)
        services.person_reactivate(username=username, actor=actor_of(request), reason=data["reason"])
        return Response(PersonOut(User.objects.get(username=username)).data)


class TokenOut(serializers.Serializer):
    token = serializers.CharField(help_text="send as `Authorization: Bearer <token>`")
    expires_at = serializers.DateTimeField()


class TokenView(APIView):
    """A short-lived token for scripts: one password check, then cheap calls until it expires."""

    permission_classes = [CanRead]

    @extend_schema(request=None, responses={201: TokenOut}, summary="Trade your password for a short-lived token")
    def post(self, request):
        if isinstance(request.successful_authenticator, TokenAuthentication):  # tokens expire: no renewing oneself
            raise exceptions.PermissionDenied("a token is issued for a password (Basic) or a session, not a token")
        token, expires_at = token_issue(request.user)
        return Response(TokenOut({"token": token, "expires_at": expires_at}).data, status=status.HTTP_201_CREATED)
