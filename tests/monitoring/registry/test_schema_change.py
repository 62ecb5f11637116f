"""What a new data schema changes in what monitoring reads: every change but a new order needs an
approved schema_change, a feature added too (it joins the drift correction across features)."""

import pytest

from monitoring.registry.data_schema import parse_schema
from monitoring.registry.schema_change import schema_changes
from tests.monitoring.conftest import SCHEMA

RANKING = {"numerical": ["f"], "prediction": "score", "target": "clicked", "query": "user", "item": "item"}


def test_a_new_order_of_the_same_columns_changes_nothing():
    assert schema_changes(parse_schema(SCHEMA), parse_schema({**SCHEMA, "numerical": ["debt_ratio", "income"]})) == []


@pytest.mark.parametrize(
    ("new", "found"),
    [
        ({**SCHEMA, "numerical": [*SCHEMA["numerical"], "age"]}, ["'age' joins numerical"]),
        ({**SCHEMA, "categorical": ["region", "device"]}, ["'device' joins categorical"]),
        ({**SCHEMA, "segments": [*SCHEMA["segments"], "market"]}, ["'market' joins segments"]),
        ({**SCHEMA, "categorical": ["region", "channel"]}, ["'channel' joins categorical"]),  # a segment, a feature too
    ],
)
def test_a_feature_or_segment_added_is_a_change_too(new, found):
    assert schema_changes(parse_schema(SCHEMA), parse_schema(new)) == found


@pytest.mark.parametrize(
    ("old", "new", "found"),
    [
        (
            SCHEMA,
            {**SCHEMA, "numerical": ["debt_ratio"], "segments": ["region", "channel", "income"]},
            ["'income' leaves numerical (now in segments)", "'income' joins segments"],
        ),
        (
            SCHEMA,
            {**SCHEMA, "numerical": ["debt_ratio"], "categorical": ["region", "income"]},
            ["'income' leaves numerical (now in categorical)", "'income' joins categorical"],
        ),
        (SCHEMA, {**SCHEMA, "numerical": ["debt_ratio"]}, ["'income' leaves numerical (no longer in the schema)"]),
        (SCHEMA, {**SCHEMA, "segments": ["region"]}, ["'channel' leaves segments (no longer in the schema)"]),
        (
            SCHEMA,
            {**{k: v for k, v in SCHEMA.items() if k != "target"}, "segments": ["region", "channel", "defaulted"]},
            ["'defaulted' joins segments", "target changes from 'defaulted' to unset"],
        ),
        (SCHEMA, {**SCHEMA, "target": "repaid"}, ["target changes from 'defaulted' to 'repaid'"]),
        (SCHEMA, {**SCHEMA, "score": "probability"}, ["score changes from unset to 'probability'"]),
        (SCHEMA, {**SCHEMA, "prediction": "p"}, ["prediction changes from 'score' to 'p'"]),
        (SCHEMA, {**SCHEMA, "id": "row_id"}, ["id changes from 'id' to 'row_id'"]),
        (SCHEMA, {**SCHEMA, "timestamp": "at"}, ["timestamp changes from 'timestamp' to 'at'"]),
        (
            SCHEMA,
            {**SCHEMA, "earliest": "2020-01-01T00:00:00Z"},
            ["earliest changes from unset to '2020-01-01T00:00:00+00:00'"],
        ),
        (
            RANKING,
            {k: v for k, v in RANKING.items() if k not in ("query", "item")},
            ["query changes from 'user' to unset", "item changes from 'item' to unset"],
        ),
        (RANKING, {**RANKING, "item": "product"}, ["item changes from 'item' to 'product'"]),
    ],
)
def test_each_change_names_its_column_and_role(old, new, found):
    assert schema_changes(parse_schema(old), parse_schema(new)) == found
