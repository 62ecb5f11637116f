from django.urls import path

from audit import views as audit_views

urlpatterns = [
    path("healthz", audit_views.healthz, name="healthz"),
    path("readyz", audit_views.readyz, name="readyz"),
]
