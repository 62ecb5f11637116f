"""The model aggregate: a registered model, its versions, its deployment pointer and its keys,
and the events of its stream ("model", name).

Pure (no Django): folded from the events of its stream; each command checks the rules and
returns the events it would add, never mutating state itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from audit.errors import AlreadyExists, InvalidCommand, NotFound
from audit.events import Choice, Closed, Context, Event, event_type
from monitoring.registry.data_schema import NAME, SchemaError, Task, column_clashes, parse_schema
from monitoring.registry.schema_change import schema_changes
from monitoring.remediation.kinds import ApprovalRequired, RemediationKind

STREAM = "model"


class DeploymentAction(Closed):
    PROMOTE = "promote"  # the version becomes champion
    ROLLBACK = "rollback"  # the champion goes back to a version that served before
    CHALLENGER = "challenger"
    CANARY = "canary"  # a version takes a share of traffic
    CANARY_STOP = "canary_stop"


# The request kind whose approval each change of the pointer needs (the first champion of a
# model that never served needs none).
APPROVED_BY = {
    DeploymentAction.PROMOTE: RemediationKind.PROMOTE_CHALLENGER,
    DeploymentAction.ROLLBACK: RemediationKind.ROLLBACK,
    DeploymentAction.CHALLENGER: RemediationKind.SET_CHALLENGER,
    DeploymentAction.CANARY: RemediationKind.CANARY_START,
    DeploymentAction.CANARY_STOP: RemediationKind.CANARY_STOP,
}


# Events ------------------------------------------------------------------------------------------


@event_type("monitoring.ModelRegistered")
class ModelRegistered(Event):
    """A model is put under monitoring."""

    name: str
    task: Choice[Task]
    owner: str
    data_schema: dict[str, Any]
    description: str | None = None

    def describe(self, about: Context) -> str:
        return f"{about.who} registered the {self.task.value.replace('_', ' ')} model {self.name}{about.because}"


@event_type("monitoring.ModelUpdated")
class ModelUpdated(Event):
    """A model's owner, description or data schema changes; a new data schema bumps schema_version."""

    name: str
    schema_version: int
    owner: str | None = None
    description: str | None = None
    data_schema: dict[str, Any] | None = None

    def describe(self, about: Context) -> str:
        changed = [part for part in ("owner", "description", "data_schema") if getattr(self, part) is not None]
        what = ", ".join(part.replace("_", " ") for part in changed)
        return f"{about.who} changed the {what} of {self.name}{about.because}"


@event_type("monitoring.ModelRetired")
class ModelRetired(Event):
    """A model leaves production: it accepts no more data and no deployment change."""

    tone: ClassVar[str] = "decision"
    name: str

    def describe(self, about: Context) -> str:
        return f"{about.who} retired the model {self.name}{about.because}"


@event_type("monitoring.ModelVersionRegistered")
class ModelVersionRegistered(Event):
    """A trained version of the model is registered (it serves nothing until promoted)."""

    name: str
    version: str
    artifact_uri: str
    training_data_digest: str | None = None
    notes: str | None = None

    def describe(self, about: Context) -> str:
        return f"{about.who} registered version {self.version} of {self.name} ({self.artifact_uri}){about.because}"


@event_type("monitoring.ModelVersionRetired")
class ModelVersionRetired(Event):
    """A version may no longer be deployed or rolled back to."""

    name: str
    version: str

    def describe(self, about: Context) -> str:
        return f"{about.who} retired version {self.version} of {self.name}{about.because}"


@event_type("monitoring.DeploymentChanged")
class DeploymentChanged(Event):
    """What serving reads changed: `action` says how; the other fields are the new pointer."""

    tone: ClassVar[str] = "decision"
    name: str
    action: Choice[DeploymentAction]
    champion: str | None
    challenger: str | None
    canary: str | None
    canary_share: float

    def describe(self, about: Context) -> str:
        done = {
            DeploymentAction.PROMOTE: f"promoted {self.champion} to champion of {self.name}",
            DeploymentAction.ROLLBACK: f"rolled {self.name} back to {self.champion}",
            DeploymentAction.CHALLENGER: (
                f"made {self.challenger} the challenger of {self.name}"
                if self.challenger
                else f"removed the challenger of {self.name}"
            ),
            DeploymentAction.CANARY: (
                f"started a canary of {self.canary} on {self.canary_share:.0%} of {self.name}'s traffic"
            ),
            DeploymentAction.CANARY_STOP: f"stopped the canary of {self.name}",
        }[self.action]
        return f"{about.who} {done}{about.because}"


@event_type("monitoring.ApiKeyIssued")
class ApiKeyIssued(Event):
    """A reporting key for one model; only its SHA-512 hash is recorded, never the key."""

    name: str
    key_id: str
    label: str
    hashed_key: str
    expires_at: str | None  # an ISO 8601 time in UTC (older events may lack the microseconds)

    def describe(self, about: Context) -> str:
        until = f", valid until {self.expires_at}" if self.expires_at else ""
        return f"{about.who} issued reporting key {self.key_id} ({self.label}) for {self.name}{until}{about.because}"


@event_type("monitoring.ApiKeyRevoked")
class ApiKeyRevoked(Event):
    """A reporting key stops working."""

    name: str
    key_id: str

    def describe(self, about: Context) -> str:
        return f"{about.who} revoked reporting key {self.key_id} of {self.name}{about.because}"


# The aggregate -----------------------------------------------------------------------------------


class ModelNotFound(NotFound):
    pass


@dataclass
class VersionState:
    artifact_uri: str
    retired: bool = False
    served: bool = False  # has been champion, challenger or canary


@dataclass
class ModelAggregate:
    name: str
    stream_type: ClassVar[str] = STREAM
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
    def stream_id(self) -> str:
        return self.name

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def has_served(self) -> bool:
        return any(state.served for state in self.versions.values())

    def apply(self, event: Event, actor_id: str = "") -> None:
        self.version += 1
        match event:
            case ModelRegistered():
                self.task, self.owner = event.task, event.owner
                self.description = event.description or ""
                self.data_schema, self.schema_version = dict(event.data_schema), 1
            case ModelUpdated():
                self.owner = event.owner if event.owner is not None else self.owner
                self.description = event.description if event.description is not None else self.description
                self.data_schema = dict(event.data_schema) if event.data_schema is not None else self.data_schema
                self.schema_version = event.schema_version
            case ModelRetired():
                self.retired = True
            case ModelVersionRegistered():
                self.versions[event.version] = VersionState(event.artifact_uri)
            case ModelVersionRetired():
                self.versions[event.version].retired = True
            case DeploymentChanged():
                self.champion, self.challenger = event.champion, event.challenger
                self.canary, self.canary_share = event.canary, event.canary_share
                for serving in (self.champion, self.challenger, self.canary):
                    if serving is not None:
                        self.versions[serving].served = True
            case ApiKeyIssued():
                self.keys[event.key_id] = False
            case ApiKeyRevoked():
                self.keys[event.key_id] = True

    # Commands ------------------------------------------------------------------------------

    def register(self, *, task: str, owner: str, description: str, data_schema: Any) -> list[Event]:
        if self.exists:
            raise AlreadyExists(f"model {self.name!r} is already registered")
        if not NAME.match(self.name):
            raise InvalidCommand(f"model name {self.name!r}: letters, digits, '_', '.', '-'; at most 100")
        if task not in set(Task):
            raise InvalidCommand(f"task must be one of {', '.join(Task)}, not {task!r}")
        if task == Task.RANKING and not (isinstance(data_schema, dict) and data_schema.get("query")):
            raise InvalidCommand(
                "a ranking model's data_schema names its query: the column that groups rows into one "
                "ranked list (a user or a request id)"
            )
        return [
            ModelRegistered(
                name=self.name,
                task=Task(task),
                owner=owner,
                data_schema=_schema(data_schema),
                description=description or None,
            )
        ]

    def update(
        self,
        *,
        owner: str | None = None,
        description: str | None = None,
        data_schema: Any = None,
        approved: bool = False,
    ) -> list[Event]:
        self._require_active()
        changes: dict[str, Any] = {}
        if owner is not None and owner != self.owner:
            changes["owner"] = owner
        if description is not None and description != self.description:
            changes["description"] = description
        schema_version = self.schema_version
        if data_schema is not None:
            schema = _schema(data_schema)
            if schema != parse_schema(self.data_schema).as_dict():
                changed = schema_changes(parse_schema(self.data_schema), parse_schema(schema))
                if changed and not approved:
                    why = (
                        f"the new data schema changes what monitoring reads ({'; '.join(changed)}); "
                        "even a feature added changes what alerts (the drift correction spans every feature)"
                    )
                    raise ApprovalRequired(RemediationKind.SCHEMA_CHANGE, {"data_schema": schema}, why)
                changes["data_schema"] = schema
                schema_version += 1
        if not changes:
            raise InvalidCommand("nothing to change: owner, description and data_schema are as they are")
        return [ModelUpdated(name=self.name, schema_version=schema_version, **changes)]

    def retire(self, *, approved: bool = False) -> list[Event]:
        self._require_active()
        if self.has_served and not approved:
            raise ApprovalRequired(
                RemediationKind.RETIRE_MODEL, {}, f"retiring {self.name} ends the monitoring of a model that served"
            )
        return [ModelRetired(name=self.name)]

    def register_version(
        self, *, version: str, artifact_uri: str, training_data_digest: str = "", notes: str = ""
    ) -> list[Event]:
        self._require_active()
        if not version or len(version) > 100 or not version.isprintable():
            raise InvalidCommand("version must be a printable label of 1 to 100 characters")
        if version in self.versions:
            raise AlreadyExists(f"version {version!r} of {self.name!r} is already registered")
        if not artifact_uri:
            raise InvalidCommand("artifact_uri is required")
        return [
            ModelVersionRegistered(
                name=self.name,
                version=version,
                artifact_uri=artifact_uri,
                training_data_digest=training_data_digest or None,
                notes=notes or None,
            )
        ]

    def retire_version(self, version: str, *, approved: bool = False) -> list[Event]:
        state = self._deployable(version)
        if version in (self.champion, self.challenger, self.canary):
            raise InvalidCommand(f"version {version!r} is serving; move the deployment off it first")
        if state.served and not approved:
            why = f"version {version} has served: retiring it removes a rollback target"
            raise ApprovalRequired(RemediationKind.RETIRE_VERSION, {"version": version}, why)
        return [ModelVersionRetired(name=self.name, version=version)]

    def promote(self, version: str, *, approved: bool = False) -> list[Event]:
        """The version becomes champion; a canary or challenger of the same version ends."""
        self._deployable(version)
        if version == self.champion:
            raise InvalidCommand(f"version {version!r} is already the champion")
        canary = None if self.canary == version else self.canary
        challenger = None if self.challenger == version else self.challenger
        share = self.canary_share if canary else 0.0
        changed = self._deployment(DeploymentAction.PROMOTE, version, challenger, canary, share)
        return self._guarded(changed, version=version, approved=approved)

    def rollback(self, version: str, *, approved: bool = False) -> list[Event]:
        """Back to an earlier version: registered, not retired, and one that has served before."""
        state = self._deployable(version)
        if version == self.champion:
            raise InvalidCommand(f"version {version!r} is the champion already; nothing to roll back")
        if not state.served:
            raise InvalidCommand(f"version {version!r} has never served; a rollback must go to a version that has")
        canary = None if self.canary == version else self.canary
        challenger = None if self.challenger == version else self.challenger
        share = self.canary_share if canary else 0.0
        changed = self._deployment(DeploymentAction.ROLLBACK, version, challenger, canary, share)
        return self._guarded(changed, version=version, approved=approved)

    def set_challenger(self, version: str | None, *, approved: bool = False) -> list[Event]:
        if version is not None:
            self._deployable(version)
            if version == self.champion:
                raise InvalidCommand(f"version {version!r} is the champion; it cannot also be the challenger")
        else:
            self._require_active()
        changed = self._deployment(DeploymentAction.CHALLENGER, self.champion, version, self.canary, self.canary_share)
        return self._guarded(changed, version=version, approved=approved)

    def start_canary(self, version: str, share: float | None, *, approved: bool = False) -> list[Event]:
        self._deployable(version)
        if self.champion is None:
            raise InvalidCommand("a canary needs a champion to share traffic with; promote one first")
        if version == self.champion:
            raise InvalidCommand(f"version {version!r} is the champion; a canary must be another version")
        if not (isinstance(share, int | float) and not isinstance(share, bool) and 0.0 < float(share) < 1.0):
            raise InvalidCommand(f"canary_share must lie strictly between 0 and 1, not {share!r}")
        changed = self._deployment(DeploymentAction.CANARY, self.champion, self.challenger, version, float(share))
        return self._guarded(changed, version=version, approved=approved)

    def stop_canary(self, *, approved: bool = False) -> list[Event]:
        self._require_active()
        if self.canary is None:
            raise InvalidCommand("there is no canary to stop")
        changed = self._deployment(DeploymentAction.CANARY_STOP, self.champion, self.challenger, None, 0.0)
        return self._guarded(changed, version=None, approved=approved)

    def change_deployment(
        self, action: str, version: str | None, share: float | None = None, *, approved: bool = False
    ) -> list[Event]:
        """One entry for every deployment action (the API, the executors)."""
        if action not in set(DeploymentAction):
            raise InvalidCommand(f"action must be one of {', '.join(DeploymentAction)}, not {action!r}")
        match DeploymentAction(action):
            case DeploymentAction.PROMOTE:
                return self.promote(_named(version), approved=approved)
            case DeploymentAction.ROLLBACK:
                return self.rollback(_named(version), approved=approved)
            case DeploymentAction.CHALLENGER:
                return self.set_challenger(version, approved=approved)
            case DeploymentAction.CANARY:
                return self.start_canary(_named(version), share, approved=approved)
        return self.stop_canary(approved=approved)

    def issue_key(self, *, key_id: str, label: str, hashed_key: str, expires_at: str | None) -> list[Event]:
        self._require_active()
        return [ApiKeyIssued(name=self.name, key_id=key_id, label=label, hashed_key=hashed_key, expires_at=expires_at)]

    def revoke_key(self, key_id: str) -> list[Event]:
        self._require_exists()
        if key_id not in self.keys:
            raise ModelNotFound(f"model {self.name!r} has no key {key_id!r}")
        if self.keys[key_id]:
            raise InvalidCommand(f"key {key_id!r} is already revoked")
        return [ApiKeyRevoked(name=self.name, key_id=key_id)]

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

    def _guarded(self, changed: DeploymentChanged, *, version: str | None, approved: bool) -> list[Event]:
        """The change, once it is allowed: the first champion of a model that never served is set
        directly; every other change of what serves needs an approved request."""
        action = DeploymentAction(changed.action)
        if not (approved or (action is DeploymentAction.PROMOTE and not self.has_served)):
            why = f"{action.value} changes what serves for {self.name}"
            raise ApprovalRequired(APPROVED_BY[action], _parameters(action, version, changed.canary_share), why)
        return [changed]

    def _deployment(
        self, action: DeploymentAction, champion: str | None, challenger: str | None, canary: str | None, share: float
    ) -> DeploymentChanged:
        return DeploymentChanged(
            name=self.name,
            action=action,
            champion=champion,
            challenger=challenger,
            canary=canary,
            canary_share=float(share),
        )


def _parameters(action: DeploymentAction, version: str | None, share: float) -> dict[str, Any]:
    """The parameters of the request that would approve `action` (see remediation.kinds)."""
    match action:
        case DeploymentAction.ROLLBACK:
            return {"to_version": version}
        case DeploymentAction.CANARY:
            return {"version": version, "share": share}
        case DeploymentAction.CANARY_STOP:
            return {}
    return {"version": version}


def _named(version: str | None) -> str:
    if not version:
        raise InvalidCommand("this action needs a version")
    return version


def _schema(raw: Any) -> dict[str, Any]:
    """A schema newly set: it parses, and no column in it clashes (stored schemas are only parsed)."""
    try:
        schema = parse_schema(raw)
        clashes = column_clashes(schema)
        if clashes:
            raise SchemaError(clashes)
        return schema.as_dict()
    except SchemaError as error:
        raise InvalidCommand(f"data_schema: {error}") from error
