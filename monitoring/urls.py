from django.urls import path

from monitoring.access import api as people
from monitoring.alerting import api as alerts
from monitoring.ingestion import api as ingestion
from monitoring.policies import api as policies
from monitoring.registry import api as registry
from monitoring.remediation import api as remediations
from monitoring.runs import api as runs

urlpatterns = [
    path("auth/token/", people.TokenView.as_view(), name="auth-token"),
    path("users/", people.PeopleView.as_view(), name="users"),
    path("users/<str:username>/", people.PersonView.as_view(), name="user"),
    path("users/<str:username>/roles/", people.RoleGrantView.as_view(), name="user-roles"),
    path("users/<str:username>/roles/<str:role>/revoke/", people.RoleRevokeView.as_view(), name="user-role-revoke"),
    path("users/<str:username>/deactivate/", people.DeactivateView.as_view(), name="user-deactivate"),
    path("users/<str:username>/reactivate/", people.ReactivateView.as_view(), name="user-reactivate"),
    path("models/", registry.ModelListView.as_view(), name="models"),
    path("models/<str:name>/", registry.ModelDetailView.as_view(), name="model"),
    path("models/<str:name>/retire/", registry.ModelRetireView.as_view(), name="model-retire"),
    path("models/<str:name>/versions/", registry.VersionListView.as_view(), name="versions"),
    path(
        "models/<str:name>/versions/<str:version>/retire/",
        registry.VersionRetireView.as_view(),
        name="version-retire",
    ),
    path("models/<str:name>/deployment/", registry.DeploymentView.as_view(), name="deployment"),
    path("models/<str:name>/keys/", registry.KeyListView.as_view(), name="keys"),
    path("models/<str:name>/keys/<str:key_id>/revoke/", registry.KeyRevokeView.as_view(), name="key-revoke"),
    path("models/<str:name>/reference/", ingestion.ReferenceIngestView.as_view(), name="ingest-reference"),
    path("models/<str:name>/predictions/", ingestion.PredictionsIngestView.as_view(), name="ingest-predictions"),
    path("models/<str:name>/labels/", ingestion.LabelsIngestView.as_view(), name="ingest-labels"),
    path("models/<str:name>/kpis/", ingestion.KpisIngestView.as_view(), name="ingest-kpis"),
    path("models/<str:name>/batches/", ingestion.BatchListView.as_view(), name="batches"),
    path("models/<str:name>/policies/", policies.PolicyView.as_view(), name="policies"),
    path("models/<str:name>/runs/", runs.ModelRunsView.as_view(), name="model-runs"),
    path("runs/<uuid:run_id>/", runs.RunDetailView.as_view(), name="run"),
    path("alerts/", alerts.AlertListView.as_view(), name="alerts"),
    path("alerts/<uuid:alert_id>/", alerts.AlertDetailView.as_view(), name="alert"),
    path("alerts/<uuid:alert_id>/acknowledge/", alerts.AlertAcknowledgeView.as_view(), name="alert-acknowledge"),
    path("alerts/<uuid:alert_id>/resolve/", alerts.AlertResolveView.as_view(), name="alert-resolve"),
    path("alerts/<uuid:alert_id>/silence/", alerts.AlertSilenceView.as_view(), name="alert-silence"),
    path("alertmanager/", alerts.AlertmanagerReceiverView.as_view(), name="alertmanager"),
    path("remediations/", remediations.RemediationListView.as_view(), name="remediations"),
    path("remediations/<uuid:request_id>/", remediations.RemediationDetailView.as_view(), name="remediation"),
    path(
        "remediations/<uuid:request_id>/approve/",
        remediations.RemediationApproveView.as_view(),
        name="remediation-approve",
    ),
    path(
        "remediations/<uuid:request_id>/reject/",
        remediations.RemediationRejectView.as_view(),
        name="remediation-reject",
    ),
    path(
        "remediations/<uuid:request_id>/review/",
        remediations.RemediationReviewView.as_view(),
        name="remediation-review",
    ),
    path(
        "remediations/<uuid:request_id>/cancel/",
        remediations.RemediationCancelView.as_view(),
        name="remediation-cancel",
    ),
    path(
        "remediations/<uuid:request_id>/retry/", remediations.RemediationRetryView.as_view(), name="remediation-retry"
    ),
    path(
        "remediations/<uuid:request_id>/abandon/",
        remediations.RemediationAbandonView.as_view(),
        name="remediation-abandon",
    ),
    path(
        "remediations/<uuid:request_id>/callback/",
        remediations.RemediationCallbackView.as_view(),
        name="remediation-callback",
    ),
]
