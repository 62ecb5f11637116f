"""The model aggregate's rules, without a database."""

import pytest

from audit.aggregates import AlreadyExists, InvalidCommand
from monitoring.registry.domain import ModelAggregate, ModelNotFound, ModelRegistered, ModelVersionRegistered
from monitoring.remediation.kinds import ApprovalRequired
from tests.monitoring.conftest import SCHEMA


def _model() -> ModelAggregate:
    return _apply(
        ModelAggregate("m"),
        [
            ModelRegistered(name="m", task="regression", owner="a", data_schema=SCHEMA),
            ModelVersionRegistered(name="m", version="1", artifact_uri="s3://1"),
            ModelVersionRegistered(name="m", version="2", artifact_uri="s3://2"),
        ],
    )


def _apply(model: ModelAggregate, changes) -> ModelAggregate:
    for event in changes:
        model.apply(event)
    return model


def test_registering_twice_is_refused():
    with pytest.raises(AlreadyExists, match="already registered"):
        _model().register(task="regression", owner="a", description="", data_schema=SCHEMA)


@pytest.mark.parametrize(
    ("task", "schema", "message"),
    [
        ("forecasting", SCHEMA, "task must be one of"),
        ("regression", {"numerical": ["x"]}, "prediction"),
        ("regression", {"numerical": ["x", "x"], "prediction": "p"}, "listed twice"),
        ("regression", {"numerical": ["x"], "categorical": ["x"], "prediction": "p"}, "both numerical and categorical"),
        ("regression", {"numerical": ["x"], "prediction": "x"}, "both a feature and the prediction"),
        ("regression", {"numerical": ["x"], "prediction": "p", "target": "p"}, "more than one role"),
        ("regression", {"numerical": ["x"], "prediction": "p", "colour": "red"}, "unknown key 'colour'"),
        ("regression", {"numerical": ["bad name"], "prediction": "p"}, "not a valid column name"),
        ("regression", {"prediction": "p"}, "at least one numerical or categorical feature"),
        ("regression", [], "must be an object"),
    ],
)
def test_bad_registrations_say_what_is_wrong(task, schema, message):
    with pytest.raises(InvalidCommand, match=message):
        ModelAggregate("m").register(task=task, owner="a", description="", data_schema=schema)


def test_a_new_data_schema_bumps_the_schema_version_and_a_same_one_changes_nothing():
    model = _model()
    changed = {**SCHEMA, "numerical": [*SCHEMA["numerical"], "age"]}
    [updated] = model.update(data_schema=changed, approved=True)
    assert updated.schema_version == 2
    with pytest.raises(InvalidCommand, match="nothing to change"):
        model.update(data_schema=SCHEMA, owner="a")


def test_only_the_first_champion_of_a_model_that_never_served_is_set_without_approval():
    model = _apply(_model(), _model().promote("1"))  # the first champion: direct
    needs = {
        "promote_challenger": lambda: model.promote("2"),
        "set_challenger": lambda: model.set_challenger("2"),
        "canary_start": lambda: model.start_canary("2", 0.1),
        "retire_model": lambda: model.retire(),
    }
    for kind, change in needs.items():
        with pytest.raises(ApprovalRequired) as caught:
            change()
        assert caught.value.kind == kind
    served_twice = _apply(model, model.promote("2", approved=True))
    with pytest.raises(ApprovalRequired) as caught:
        served_twice.rollback("1")
    assert (caught.value.kind, caught.value.parameters) == ("rollback", {"to_version": "1"})
    with pytest.raises(ApprovalRequired, match="retire_version"):
        served_twice.retire_version("1")
    shrunk = {**SCHEMA, "numerical": SCHEMA["numerical"][1:]}
    with pytest.raises(ApprovalRequired, match="schema_change"):
        model.update(data_schema=shrunk)
    grown = {**SCHEMA, "numerical": [*SCHEMA["numerical"], "age"]}
    with pytest.raises(ApprovalRequired, match="'age' joins numerical"):  # it joins the drift correction
        model.update(data_schema=grown)
    assert model.update(data_schema=grown, approved=True)


def test_rollback_goes_only_to_a_version_that_served_and_is_not_retired():
    model = _apply(_model(), _model().promote("1"))
    model = _apply(model, model.promote("2", approved=True))
    assert (model.champion, model.versions["1"].served) == ("2", True)
    [changed] = model.rollback("1", approved=True)
    assert changed.champion == "1" and changed.action == "rollback"
    with pytest.raises(InvalidCommand, match="already"):
        model.rollback("2")
    fresh = _apply(_model(), _model().promote("1"))
    with pytest.raises(InvalidCommand, match="never served"):
        fresh.rollback("2")
    with pytest.raises(ModelNotFound, match="no version '9'"):
        fresh.rollback("9")


def test_a_serving_version_cannot_be_retired_and_a_retired_one_cannot_serve():
    model = _apply(_model(), _model().promote("1"))
    with pytest.raises(InvalidCommand, match="is serving"):
        model.retire_version("1")
    model = _apply(model, model.retire_version("2"))
    with pytest.raises(InvalidCommand, match="retired"):
        model.promote("2")


@pytest.mark.parametrize("share", [0, 1, 1.5, -0.1, "half"])
def test_canary_share_lies_strictly_between_zero_and_one(share):
    model = _apply(_model(), _model().promote("1"))
    with pytest.raises(InvalidCommand, match="canary_share"):
        model.start_canary("2", share)


def test_canary_needs_a_champion_and_promoting_it_ends_the_canary():
    with pytest.raises(InvalidCommand, match="needs a champion"):
        _model().start_canary("2", 0.1)
    model = _apply(_model(), _model().promote("1"))
    model = _apply(model, model.start_canary("2", 0.1, approved=True))
    assert (model.canary, model.canary_share) == ("2", 0.1)
    model = _apply(model, model.promote("2", approved=True))
    assert (model.champion, model.canary, model.canary_share) == ("2", None, 0.0)


def test_a_retired_model_accepts_no_command_and_unknown_models_are_not_found():
    model = _apply(_model(), _model().retire())
    with pytest.raises(InvalidCommand, match="retired"):
        model.register_version(version="3", artifact_uri="s3://3")
    with pytest.raises(ModelNotFound):
        ModelAggregate("ghost").promote("1")


def test_a_key_is_revoked_once():
    model = _apply(_model(), _model().issue_key(key_id="abc", label="svc", hashed_key="sha512$$x", expires_at=None))
    model = _apply(model, model.revoke_key("abc"))
    with pytest.raises(InvalidCommand, match="already revoked"):
        model.revoke_key("abc")
    with pytest.raises(ModelNotFound, match="no key"):
        model.revoke_key("zzz")
