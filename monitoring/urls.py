from django.urls import path

from monitoring.api import ingestion, registry

urlpatterns = [
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
]
