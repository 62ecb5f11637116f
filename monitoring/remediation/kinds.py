"""What a remediation request may ask for, and the refusal that names the request a change
needs. Pure, and beneath every concept that guards a change (registry, policies) as well as
the remediation workflow itself."""

from __future__ import annotations

from typing import Any

from audit.errors import InvalidCommand
from audit.events import Closed


class RemediationKind(Closed):
    ROLLBACK = "rollback"
    PROMOTE_CHALLENGER = "promote_challenger"  # any registered version to champion
    CANARY_START = "canary_start"  # also a new share for a running canary
    CANARY_STOP = "canary_stop"
    RETRAIN = "retrain"
    THRESHOLD_CHANGE = "threshold_change"  # a new monitoring policy that is not a pure tightening
    ACCEPT_RISK = "accept_risk"
    SET_CHALLENGER = "set_challenger"  # version, or null to remove the challenger
    RETIRE_VERSION = "retire_version"  # a version that has served
    RETIRE_MODEL = "retire_model"  # a model that has served
    SCHEMA_CHANGE = "schema_change"  # a new data schema (not only a new order of its columns)
    REFERENCE_CHANGE = "reference_change"  # a reference batch staged after the model's first run


PARAMETERS: dict[RemediationKind, set[str]] = {
    RemediationKind.ROLLBACK: {"to_version"},
    RemediationKind.PROMOTE_CHALLENGER: {"version"},
    RemediationKind.CANARY_START: {"version", "share"},
    RemediationKind.CANARY_STOP: set(),
    RemediationKind.RETRAIN: {"data_start", "data_end"},
    RemediationKind.THRESHOLD_CHANGE: {"policy"},
    RemediationKind.ACCEPT_RISK: {"alert_id", "until"},
    RemediationKind.SET_CHALLENGER: {"version"},
    RemediationKind.RETIRE_VERSION: {"version"},
    RemediationKind.RETIRE_MODEL: set(),
    RemediationKind.SCHEMA_CHANGE: {"data_schema"},
    RemediationKind.REFERENCE_CHANGE: {"batch"},
}

DOCUMENTS = {"policy", "data_schema"}  # parameters that are JSON documents; every other one is a single value


class ApprovalRequired(InvalidCommand):
    """The change is one of what serves or what alerts: it takes effect only through an approved
    remediation request of `kind` with these `parameters`."""

    def __init__(self, kind: RemediationKind, parameters: dict[str, Any], why: str) -> None:
        super().__init__(f"{why}: it needs an approved remediation request of kind {kind.value}")
        self.kind, self.parameters = kind, parameters
