"""The registry's read models, kept in step with the model streams."""

from __future__ import annotations

from rest_framework_api_key.crypto import concatenate

from audit import projections
from audit.envelope import read_time
from audit.store import RecordedEvent
from monitoring.registry.domain import (
    ApiKeyIssued,
    ApiKeyRevoked,
    DeploymentChanged,
    ModelRegistered,
    ModelRetired,
    ModelUpdated,
    ModelVersionRegistered,
    ModelVersionRetired,
)
from monitoring.registry.models import Deployment, ModelApiKey, ModelVersion, RegisteredModel


def _model_registered(event: ModelRegistered, recorded: RecordedEvent) -> None:
    RegisteredModel.objects.create(
        name=event.name,
        task=event.task,
        owner=event.owner,
        description=event.description or "",
        data_schema=event.data_schema,
        schema_version=1,
        registered_at=recorded.occurred_at,
        registered_seq=recorded.seq,
        registered_event_id=recorded.event_id,
    )


def _model_updated(event: ModelUpdated, recorded: RecordedEvent) -> None:
    changes = {key: getattr(event, key) for key in ("owner", "description", "data_schema")}
    RegisteredModel.objects.filter(name=event.name).update(
        **{key: value for key, value in changes.items() if value is not None},
        schema_version=event.schema_version,
        updated_seq=recorded.seq,
    )


def _model_retired(event: ModelRetired, recorded: RecordedEvent) -> None:
    RegisteredModel.objects.filter(name=event.name).update(retired=True, updated_seq=recorded.seq)


def _version_registered(event: ModelVersionRegistered, recorded: RecordedEvent) -> None:
    ModelVersion.objects.create(
        model_id=event.name,
        version=event.version,
        artifact_uri=event.artifact_uri,
        training_data_digest=event.training_data_digest or "",
        notes=event.notes or "",
        registered_at=recorded.occurred_at,
        registered_seq=recorded.seq,
        registered_event_id=recorded.event_id,
    )


def _version_retired(event: ModelVersionRetired, recorded: RecordedEvent) -> None:
    ModelVersion.objects.filter(model_id=event.name, version=event.version).update(retired=True)


def _deployment_changed(event: DeploymentChanged, recorded: RecordedEvent) -> None:
    pointer = {
        "champion": event.champion,
        "challenger": event.challenger,
        "canary": event.canary,
        "canary_share": event.canary_share,
    }
    Deployment.objects.update_or_create(
        model_id=event.name,
        defaults={**pointer, "changed_at": recorded.occurred_at, "seq": recorded.seq, "event_id": recorded.event_id},
    )
    serving = [v for v in (event.champion, event.challenger, event.canary) if v is not None]
    ModelVersion.objects.filter(model_id=event.name, version__in=serving).update(served=True)


def _key_issued(event: ApiKeyIssued, recorded: RecordedEvent) -> None:
    ModelApiKey.objects.create(
        id=concatenate(event.key_id, event.hashed_key),
        prefix=event.key_id,
        hashed_key=event.hashed_key,
        name=event.label,
        expiry_date=read_time(event.expires_at) if event.expires_at else None,
        model_id=event.name,
        issued_by=recorded.actor["id"],
        issued_seq=recorded.seq,
    )
    # `created` is auto_now_add; a replay must keep the original time.
    ModelApiKey.objects.filter(prefix=event.key_id).update(created=recorded.occurred_at)


def _key_revoked(event: ApiKeyRevoked, recorded: RecordedEvent) -> None:
    ModelApiKey.objects.filter(prefix=event.key_id).update(revoked=True)


REGISTRY = projections.register(
    projections.Projection(
        name="monitoring.registry",
        handlers={
            ModelRegistered: _model_registered,
            ModelUpdated: _model_updated,
            ModelRetired: _model_retired,
            ModelVersionRegistered: _version_registered,
            ModelVersionRetired: _version_retired,
            DeploymentChanged: _deployment_changed,
            ApiKeyIssued: _key_issued,
            ApiKeyRevoked: _key_revoked,
        },
        models=[RegisteredModel, ModelVersion, Deployment, ModelApiKey],  # a rebuild wipes them in reverse
    )
)
