"""What a new data schema changes in what monitoring reads. Pure.

Every such change changes what alerts, and takes effect only through an approved schema_change
request: a feature or segment leaving its list (its drift check or its cohort ends, even when
the column stays in the schema under another role), a feature moving between numerical and
categorical (another test and effect measure), a role column (id, timestamp, prediction, score,
target, query, item) set, changed or removed (what the checks read and join on), the earliest
plausible time moved (what data is accepted); and a feature or segment added too: the drift
decision corrects across every feature (Holm, Bonferroni) and cohorts are judged against a
bound that grows with their number, so twenty quiet features more can make a drifting one's
alert disappear. Only a new order of the same columns changes nothing.
"""

from __future__ import annotations

from monitoring.registry.data_schema import ROLE_KEYS, DataSchema

LISTS = ("numerical", "categorical", "segments")


def schema_changes(old: DataSchema, new: DataSchema) -> list[str]:
    """What the change from `old` to `new` changes in what monitoring reads, one line each,
    naming the column and the role; empty when it only reorders."""
    found = []
    for role in LISTS:
        kept, had = set(getattr(new, role)), set(getattr(old, role))
        found += [f"{column!r} leaves {role}{_now(column, new)}" for column in getattr(old, role) if column not in kept]
        found += [f"{column!r} joins {role}" for column in getattr(new, role) if column not in had]
    for role in ROLE_KEYS:
        was, now = getattr(old, role), getattr(new, role)
        if was != now:
            found.append(f"{role} changes from {_show(was)} to {_show(now)}")
    if old.earliest != new.earliest:
        found.append(f"earliest changes from {_show(old.earliest)} to {_show(new.earliest)}")
    return found


def _now(column: str, schema: DataSchema) -> str:
    """Where the column is in the new schema, if anywhere."""
    places = [f"in {role}" for role in LISTS if column in getattr(schema, role)]
    places += [f"the {role}" for role in ROLE_KEYS if getattr(schema, role) == column]
    return f" (now {' and '.join(places)})" if places else " (no longer in the schema)"


def _show(value: object) -> str:
    if value is None:
        return "unset"
    return repr(value.isoformat() if hasattr(value, "isoformat") else value)
