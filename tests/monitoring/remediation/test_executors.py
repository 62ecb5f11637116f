"""Deployment executors: the built-in pointer switch, and the MLflow alias adapter's contract
(checked against an in-memory stand-in for MLflow's registry, which is an external system)."""

import pytest

from monitoring.models import Deployment
from monitoring.remediation.executors import (
    DeploymentChange,
    ExecutorUnavailable,
    MlflowAliasExecutor,
    RegistryExecutor,
    configured_executors,
)
from monitoring.remediation.kinds import ApprovalRequired
from tests.monitoring.conftest import ALICE, approved

pytestmark = pytest.mark.django_db


def _change(action: str, version: str | None, share: float | None = None, approval: str = "-") -> DeploymentChange:
    return DeploymentChange("credit", action, version, share, ALICE, "test", approval)


def test_the_registry_executor_moves_the_pointer_once_and_only_for_its_approved_request(credit_model):
    request_id = approved("credit", "promote_challenger", {"version": "1.1"})  # executed by the executors
    assert Deployment.objects.get(model_id="credit").champion == "1.1"
    again = RegistryExecutor().execute(_change("promote", "1.1", approval=request_id))  # a retried execution
    assert again == {"executor": "registry", "champion": "1.1", "changed": False}
    with pytest.raises(ApprovalRequired, match="no approved rollback of credit being executed"):
        RegistryExecutor().execute(_change("rollback", "1.0", approval=request_id))
    with pytest.raises(ApprovalRequired):  # an approval that names nothing in the log
        RegistryExecutor().execute(_change("rollback", "1.0", approval="6f1c3a52-0000-4000-8000-000000000000"))
    assert Deployment.objects.get(model_id="credit").champion == "1.1"


class AliasRegistry:
    """What MlflowAliasExecutor uses of mlflow.MlflowClient."""

    def __init__(self):
        self.aliases: dict[tuple[str, str], str] = {}

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[(name, alias)] = version

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.aliases.pop((name, alias), None)


def test_the_mlflow_executor_moves_aliases():
    aliases = AliasRegistry()
    executor = MlflowAliasExecutor(client=aliases)
    executor.execute(_change("promote", "7"))
    executor.execute(_change("canary", "8", 0.1))
    executor.execute(_change("rollback", "6"))
    assert aliases.aliases == {("credit", "champion"): "6", ("credit", "canary"): "8"}
    executor.execute(_change("canary_stop", None))
    assert ("credit", "canary") not in aliases.aliases


def test_without_mlflow_installed_the_executor_says_so():
    with pytest.raises(ExecutorUnavailable, match="mlflow package"):
        MlflowAliasExecutor().execute(_change("promote", "1"))


def test_executors_come_from_settings(settings):
    settings.DEPLOYMENT_EXECUTORS = [
        "monitoring.remediation.executors.RegistryExecutor",
        "monitoring.remediation.executors.MlflowAliasExecutor",
    ]
    assert [e.name for e in configured_executors()] == ["registry", "mlflow"]
