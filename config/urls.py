from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from audit import api as audit_api
from audit import views as audit_views
from monitoring.alerting.metrics import metrics_view

api = [
    path("audit/checkpoints/latest/", audit_api.LatestCheckpointView.as_view(), name="checkpoint-latest"),
    path("audit/checkpoints/<int:tree_size>/", audit_api.CheckpointBySizeView.as_view(), name="checkpoint"),
    path("audit/proofs/inclusion/", audit_api.InclusionProofView.as_view(), name="proof-inclusion"),
    path("audit/proofs/consistency/", audit_api.ConsistencyProofView.as_view(), name="proof-consistency"),
    path("audit/events/", audit_api.EventListView.as_view(), name="audit-events"),
    path("audit/events/<int:seq>/", audit_api.EventDetailView.as_view(), name="audit-event"),
    path("evidence/", audit_api.EvidenceListView.as_view(), name="evidence"),
    path("evidence/<uuid:export_id>/", audit_api.EvidenceDetailView.as_view(), name="evidence-detail"),
    path("evidence/<uuid:export_id>/download/", audit_api.EvidenceDownloadView.as_view(), name="evidence-download"),
    path("", include("monitoring.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's script is a file (no inline script); it sets inline styles, which its page alone allows.
    path(
        "docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="docs",
    ),
]

handler500 = "monitoring.http.server_error"

urlpatterns = [
    path("api/v1/", include(api)),
    path("metrics", metrics_view, name="metrics"),
    path("healthz", audit_views.healthz, name="healthz"),
    path("readyz", audit_views.readyz, name="readyz"),
    path("", include("web.urls")),
]
