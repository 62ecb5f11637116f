"""Read models of the registry: projections of the model streams, rebuilt by replay."""

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class RegisteredModel(models.Model):
    name = models.CharField(max_length=200, primary_key=True)
    task = models.CharField(max_length=40)
    owner = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    data_schema = models.JSONField(default=dict)
    schema_version = models.IntegerField(default=1)
    retired = models.BooleanField(default=False)
    registered_at = models.DateTimeField()
    registered_seq = models.BigIntegerField()
    registered_event_id = models.UUIDField(null=True)  # the ModelRegistered event, to cite
    updated_seq = models.BigIntegerField(null=True)


class ModelVersion(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=100)
    artifact_uri = models.TextField()
    training_data_digest = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    retired = models.BooleanField(default=False)
    served = models.BooleanField(default=False)
    registered_at = models.DateTimeField()
    registered_seq = models.BigIntegerField()
    registered_event_id = models.UUIDField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="model_version_unique")]


class Deployment(models.Model):
    """What serving systems poll. `seq` of the last change is the ETag."""

    model = models.OneToOneField(RegisteredModel, on_delete=models.CASCADE, primary_key=True)
    # NULL, not "": no version holds the role (the API answers null).
    champion = models.CharField(max_length=100, null=True)  # noqa: DJ001
    challenger = models.CharField(max_length=100, null=True)  # noqa: DJ001
    canary = models.CharField(max_length=100, null=True)  # noqa: DJ001
    canary_share = models.FloatField(default=0.0)
    changed_at = models.DateTimeField()
    seq = models.BigIntegerField()
    event_id = models.UUIDField(null=True)  # the DeploymentChanged event that set it


class ModelApiKey(AbstractAPIKey):
    """A reporting key for one model (hashed with SHA-512 by djangorestframework-api-key)."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="api_keys")
    issued_by = models.CharField(max_length=200)
    issued_seq = models.BigIntegerField()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "model API key"
