"""The model aggregate: a registered model, its versions, its deployment pointer and its keys.

Pure (no Django): rebuilt by folding the events of its stream ("model", name); each command
checks the rules and returns the events it would add, never mutating state itself. The
service appends them with the stream version the aggregate was loaded at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitoring.data_schema import NAME, TASKS, SchemaError, parse_schema

Change = tuple[str, dict[str, Any]]


class DomainError(Exception):
    """A command refused by the rules; the message says which and why."""


class ModelNotFound(DomainError):
    pass


class AlreadyExists(DomainError):
    pass


class InvalidCommand(DomainError):
    pass


@dataclass
class VersionState:
    artifact_uri: str
    retired: bool = False
    served: bool = False  # has been champion, challenger or canary


@dataclass
class ModelAggregate:
    name: str
    version: int = 0  # the stream's version: how many events it holds
    task: str = ""
    owner: str = ""
    description: str = ""
    data_schema: dict[str, Any] = field(default_factory=dict)
    schema_version: int = 0
    retired: bool = False
    versions: dict[str, VersionState] = field(default_factory=dict)
    champion: str | None = None
    challenger: str | None = None
    canary: str | None = None
    canary_share: float = 0.0
    keys: dict[str, bool] = field(default_factory=dict)  # key id -> revoked

    @property
    def exists(self) -> bool:
        return self.version > 0

    @classmethod
    def replay(cls, name: str, events: Iterable[tuple[str, Mapping[str, Any]]]) -> ModelAggregate:
        aggregate = cls(name)
        for event_type, payload in events:
            aggregate.apply(event_type, payload)
        return aggregate

    def apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
        self.version += 1
        short = event_type.removeprefix("monitoring.")
        if short == "ModelRegistered":
            self.task, self.owner = payload["task"], payload["owner"]
            self.description = payload.get("description", "")
            self.data_schema, self.schema_version = dict(payload["data_schema"]), 1
        elif short == "ModelUpdated":
            self.owner = payload.get("owner", self.owner)
            self.description = payload.get("description", self.description)
            self.data_schema = dict(payload.get("data_schema", self.data_schema))
            self.schema_version = payload["schema_version"]
        elif short == "ModelRetired":
            self.retired = True
        elif short == "ModelVersionRegistered":
            self.versions[payload["version"]] = VersionState(payload["artifact_uri"])
        elif short == "ModelVersionRetired":
            self.versions[payload["version"]].retired = True
        elif short == "DeploymentChanged":
            self.champion, self.challenger = payload["champion"], payload["challenger"]
            self.canary, self.canary_share = payload["canary"], payload["canary_share"]
            for serving in (self.champion, self.challenger, self.canary):
                if serving is not None:
                    self.versions[serving].served = True
        elif short == "ApiKeyIssued":
            self.keys[payload["key_id"]] = False
        elif short == "ApiKeyRevoked":
            self.keys[payload["key_id"]] = True

    # Commands ------------------------------------------------------------------------------

    def register(self, *, task: str, owner: str, description: str, data_schema: Any) -> list[Change]:
        if self.exists:
            raise AlreadyExists(f"model {self.name!r} is already registered")
        if not NAME.match(self.name):
            raise InvalidCommand(f"model name {self.name!r}: letters, digits, '_', '.', '-'; at most 100")
        if task not in TASKS:
            raise InvalidCommand(f"task must be one of {', '.join(TASKS)}, not {task!r}")
        schema = _schema(data_schema)
        payload = {"name": self.name, "task": task, "owner": owner, "data_schema": schema}
        if description:
            payload["description"] = description
        return [("monitoring.ModelRegistered", payload)]

    def update(
        self, *, owner: str | None = None, description: str | None = None, data_schema: Any = None
    ) -> list[Change]:
        self._require_active()
        payload: dict[str, Any] = {"name": self.name, "schema_version": self.schema_version}
        if owner is not None and owner != self.owner:
            payload["owner"] = owner
        if description is not None and description != self.description:
            payload["description"] = description
        if data_schema is not None:
            schema = _schema(data_schema)
            if schema != parse_schema(self.data_schema).as_dict():
                payload["data_schema"] = schema
                payload["schema_version"] = self.schema_version + 1
        if len(payload) == 2:
            raise InvalidCommand("nothing to change: owner, description and data_schema are as they are")
        return [("monitoring.ModelUpdated", payload)]

    def retire(self) -> list[Change]:
        self._require_active()
        return [("monitoring.ModelRetired", {"name": self.name})]

    def register_version(
        self, *, version: str, artifact_uri: str, training_data_digest: str = "", notes: str = ""
    ) -> list[Change]:
        self._require_active()
        if not version or len(version) > 100 or not version.isprintable():
            raise InvalidCommand("version must be a printable label of 1 to 100 characters")
        if version in self.versions:
            raise AlreadyExists(f"version {version!r} of {self.name!r} is already registered")
        if not artifact_uri:
            raise InvalidCommand("artifact_uri is required")
        payload = {"name": self.name, "version": version, "artifact_uri": artifact_uri}
        if training_data_digest:
            payload["training_data_digest"] = training_data_digest
        if notes:
            payload["notes"] = notes
        return [("monitoring.ModelVersionRegistered", payload)]

    def retire_version(self, version: str) -> list[Change]:
        self._deployable(version)
        if version in (self.champion, self.challenger, self.canary):
            raise InvalidCommand(f"version {version!r} is serving; move the deployment off it first")
        return [("monitoring.ModelVersionRetired", {"name": self.name, "version": version})]

    def promote(self, version: str) -> list[Change]:
        """The version becomes champion; a canary or challenger of the same version ends."""
        self._deployable(version)
        if version == self.champion:
            raise InvalidCommand(f"version {version!r} is already the champion")
        canary = None if self.canary == version else self.canary
        challenger = None if self.challenger == version else self.challenger
        return [self._deployment("promote", version, challenger, canary, self.canary_share if canary else 0.0)]

    def rollback(self, version: str) -> list[Change]:
        """Back to an earlier version: registered, not retired, and one that has served before."""
        state = self._deployable(version)
        if version == self.champion:
            raise InvalidCommand(f"version {version!r} is the champion already; nothing to roll back")
        if not state.served:
            raise InvalidCommand(f"version {version!r} has never served; a rollback must go to a version that has")
        canary = None if self.canary == version else self.canary
        challenger = None if self.challenger == version else self.challenger
        return [self._deployment("rollback", version, challenger, canary, self.canary_share if canary else 0.0)]

    def set_challenger(self, version: str | None) -> list[Change]:
        if version is not None:
            self._deployable(version)
            if version == self.champion:
                raise InvalidCommand(f"version {version!r} is the champion; it cannot also be the challenger")
        else:
            self._require_active()
        return [self._deployment("challenger", self.champion, version, self.canary, self.canary_share)]

    def start_canary(self, version: str, share: float) -> list[Change]:
        self._deployable(version)
        if self.champion is None:
            raise InvalidCommand("a canary needs a champion to share traffic with; promote one first")
        if version == self.champion:
            raise InvalidCommand(f"version {version!r} is the champion; a canary must be another version")
        if not (isinstance(share, int | float) and 0.0 < float(share) < 1.0):
            raise InvalidCommand(f"canary_share must lie strictly between 0 and 1, not {share!r}")
        return [self._deployment("canary", self.champion, self.challenger, version, float(share))]

    def stop_canary(self) -> list[Change]:
        self._require_active()
        if self.canary is None:
            raise InvalidCommand("there is no canary to stop")
        return [self._deployment("canary_stop", self.champion, self.challenger, None, 0.0)]

    def issue_key(self, *, key_id: str, label: str, hashed_key: str, expires_at: str | None) -> list[Change]:
        self._require_active()
        payload = {
            "name": self.name,
            "key_id": key_id,
            "label": label,
            "hashed_key": hashed_key,
            "expires_at": expires_at,
        }
        return [("monitoring.ApiKeyIssued", payload)]

    def revoke_key(self, key_id: str) -> list[Change]:
        self._require_exists()
        if key_id not in self.keys:
            raise ModelNotFound(f"model {self.name!r} has no key {key_id!r}")
        if self.keys[key_id]:
            raise InvalidCommand(f"key {key_id!r} is already revoked")
        return [("monitoring.ApiKeyRevoked", {"name": self.name, "key_id": key_id})]

    # Rules ---------------------------------------------------------------------------------

    def _require_exists(self) -> None:
        if not self.exists:
            raise ModelNotFound(f"no model named {self.name!r}")

    def _require_active(self) -> None:
        self._require_exists()
        if self.retired:
            raise InvalidCommand(f"model {self.name!r} is retired")

    def _deployable(self, version: str) -> VersionState:
        self._require_active()
        state = self.versions.get(version)
        if state is None:
            raise ModelNotFound(f"model {self.name!r} has no version {version!r}")
        if state.retired:
            raise InvalidCommand(f"version {version!r} is retired")
        return state

    def _deployment(
        self, action: str, champion: str | None, challenger: str | None, canary: str | None, share: float
    ) -> Change:
        return (
            "monitoring.DeploymentChanged",
            {
                "name": self.name,
                "action": action,
                "champion": champion,
                "challenger": challenger,
                "canary": canary,
                "canary_share": float(share),
            },
        )


def _schema(raw: Any) -> dict[str, Any]:
    try:
        return parse_schema(raw).as_dict()
    except SchemaError as error:
        raise InvalidCommand(f"data_schema: {error}") from error
