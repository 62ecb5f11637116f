"""Executors carry out a deployment change: Driftledger's own pointer (what serving polls),
and optionally an external registry such as MLflow's. The remediation workflow runs the
executors named in settings.DEPLOYMENT_EXECUTORS (dotted paths) in order once a request is
approved; each one is idempotent, so a retried execution repeats nothing harmful.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from audit.store import Actor
from monitoring.registry import services as registry
from monitoring.registry.domain import DeploymentAction


@dataclass(frozen=True)
class DeploymentChange:
    model: str
    action: DeploymentAction
    version: str | None
    share: float | None
    actor: Actor
    reason: str
    approval: str  # the approved request this change carries out


class ExecutorUnavailable(RuntimeError):
    pass


class DeploymentExecutor(ABC):
    name = "executor"

    @abstractmethod
    def execute(self, change: DeploymentChange) -> dict[str, Any]:
        """Carry out the change; return what was done (recorded in the execution's event)."""


class RegistryExecutor(DeploymentExecutor):
    """Moves Driftledger's deployment pointer; serving sees it at its next poll."""

    name = "registry"

    def execute(self, change: DeploymentChange) -> dict[str, Any]:
        current = registry.model_load(change.model)
        if (
            change.action in (DeploymentAction.PROMOTE, DeploymentAction.ROLLBACK)
            and current.champion == change.version
        ):
            return {"executor": self.name, "champion": current.champion, "changed": False}  # already done
        recorded = registry.deployment_change(
            name=change.model,
            action=change.action,
            version=change.version,
            share=change.share,
            actor=change.actor,
            reason=change.reason,
            approval=change.approval,
        )
        return {"executor": self.name, "seq": recorded[-1].seq, "changed": True}


class MlflowAliasExecutor(DeploymentExecutor):
    """Moves MLflow model-registry aliases: the champion alias for promote and rollback, the
    challenger and canary aliases for those roles. The MLflow registered model has the same
    name as the Driftledger model, and versions are MLflow version numbers."""

    name = "mlflow"
    ALIASES = {
        DeploymentAction.PROMOTE: "champion",
        DeploymentAction.ROLLBACK: "champion",
        DeploymentAction.CHALLENGER: "challenger",
        DeploymentAction.CANARY: "canary",
    }

    def __init__(self, client: Any = None):
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from mlflow import MlflowClient
            except ImportError as error:
                raise ExecutorUnavailable("the MLflow executor needs the mlflow package installed") from error
            self._client = MlflowClient(tracking_uri=getattr(settings, "MLFLOW_TRACKING_URI", None))
        return self._client

    def execute(self, change: DeploymentChange) -> dict[str, Any]:
        if change.action == DeploymentAction.CANARY_STOP:
            self.client.delete_registered_model_alias(change.model, "canary")
            return {"executor": self.name, "alias": "canary", "deleted": True}
        alias = self.ALIASES[change.action]
        if change.version is None:
            self.client.delete_registered_model_alias(change.model, alias)
            return {"executor": self.name, "alias": alias, "deleted": True}
        self.client.set_registered_model_alias(change.model, alias, change.version)
        return {"executor": self.name, "alias": alias, "version": change.version}


def configured_executors() -> list[DeploymentExecutor]:
    paths = getattr(settings, "DEPLOYMENT_EXECUTORS", ["monitoring.remediation.executors.RegistryExecutor"])
    return [import_string(path)() for path in paths]
