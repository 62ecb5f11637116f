"""Which new data schemas only add monitoring (direct) and which change it (schema_change)."""

import pytest

from monitoring.registry.data_schema import parse_schema
from monitoring.registry.schema_change import beyond_additions
from tests.monitoring.conftest import SCHEMA

RANKING = {"numerical": ["f"], "prediction": "score", "target": "clicked", "query": "user", "item": "item"}


@pytest.mark.parametrize(
    "new",
    [
        {**SCHEMA, "numerical": [*SCHEMA["numerical"], "age"]},  # a new feature
        {**SCHEMA, "categorical": ["region", "device"]},
        {**SCHEMA, "segments": [*SCHEMA["segments"], "market"]},  # a new segment
        {**SCHEMA, "categorical": ["region", "channel"]},  # a segment becomes a feature too
        {**SCHEMA, "numerical": ["debt_ratio", "income"]},  # reordered
    ],
)
def test_new_features_and_segments_are_pure_additions(new):
    assert beyond_additions(parse_schema(SCHEMA), parse_schema(new)) == []


@pytest.mark.parametrize(
    ("old", "new", "found"),
    [
        (
            SCHEMA,
            {**SCHEMA, "numerical": ["debt_ratio"], "segments": ["region", "channel", "income"]},
            ["'income' leaves numerical (now in segments)"],
        ),
        (
            SCHEMA,
            {**SCHEMA, "numerical": ["debt_ratio"], "categorical": ["region", "income"]},
            ["'income' leaves numerical (now in categorical)"],
        ),
        (SCHEMA, {**SCHEMA, "numerical": ["debt_ratio"]}, ["'income' leaves numerical (no longer in the schema)"]),
        (SCHEMA, {**SCHEMA, "segments": ["region"]}, ["'channel' leaves segments (no longer in the schema)"]),
        (
            SCHEMA,
            {**{k: v for k, v in SCHEMA.items() if k != "target"}, "segments": ["region", "channel", "defaulted"]},
            ["target changes from 'defaulted' to unset"],
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
def test_anything_but_an_addition_names_each_column_and_role_it_changes(old, new, found):
    assert beyond_additions(parse_schema(old), parse_schema(new)) == found
