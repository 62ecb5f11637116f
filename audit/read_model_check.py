"""Read models checked against the log: every projection is replayed from the log into scratch
copies of its tables (temporary tables of the check's own transaction, which is rolled back) and
the scratch rows are compared with the live ones. A row the log does not give (forged, or changed
in place) or a row it gives that is missing or different is named by table and key.

The replay is the one `rebuild_projections` runs. A temporary table shadows the live table of its
name for unqualified names; search_path is set explicitly as well, so that a statement the
connection prepared before is parsed again and reaches the scratch copy. A table a projection
only touches (accounts, whose password hashes are not in the log) is copied first, and only the
columns the projection sets are compared. Surrogate keys (auto-increment ids) are left out: a
replay numbers its rows anew. The check reads one snapshot (REPEATABLE READ), so events appended
while it runs cannot look like a difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, models, transaction

from audit import projections

SHOWN = 5  # rows named per table and direction


@dataclass(frozen=True)
class Divergence:
    table: str
    unexplained: list[str]  # rows in the live table that replaying the log does not give: their keys
    missing: list[str]  # rows replaying the log gives that the live table lacks or holds otherwise
    unexplained_count: int
    missing_count: int

    def __str__(self) -> str:
        parts = []
        if self.unexplained_count:
            parts.append(f"{self.unexplained_count} row(s) the log does not give (e.g. {', '.join(self.unexplained)})")
        if self.missing_count:
            parts.append(f"{self.missing_count} row(s) of the log missing or changed (e.g. {', '.join(self.missing)})")
        return f"{self.table}: {'; '.join(parts)}"


def read_models_diverged() -> list[Divergence]:
    """Replay every projection from the log and compare; nothing live is written."""
    owned = [model for projection in projections.registered() for model in projection.models]
    touched = [pair for projection in projections.registered() for pair in projection.touches]
    found: list[Divergence] = []
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            if outermost:  # one snapshot for the replay and the comparison
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            for model in [*owned, *(model for model, _ in touched)]:
                table = model._meta.db_table
                cursor.execute(
                    f'CREATE TEMPORARY TABLE "{table}" (LIKE public."{table}" INCLUDING DEFAULTS INCLUDING IDENTITY)'
                    " ON COMMIT DROP"
                )
            for model, _ in touched:
                cursor.execute(
                    f'INSERT INTO pg_temp."{model._meta.db_table}" SELECT * FROM public."{model._meta.db_table}"'
                )
            cursor.execute("SET LOCAL search_path = pg_temp, public")
        projections.rebuild()
        with connection.cursor() as cursor:
            for model in owned:
                compared = [f.column for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]
                found += _compared(cursor, model, compared)
            for model, names in touched:
                found += _compared(cursor, model, [model._meta.get_field(name).column for name in names])
        transaction.set_rollback(True)  # the scratch tables go with it
    return found


def _compared(cursor, model: type[models.Model], compared: Sequence[str]) -> list[Divergence]:
    table = model._meta.db_table
    key = [f.column for f in _natural_key(model)]
    columns = ", ".join(f'"{c}"' for c in compared)
    shown = ", ".join(f'"{c}"::text' for c in key)
    directions = []
    for first, second in ((f'public."{table}"', f'pg_temp."{table}"'), (f'pg_temp."{table}"', f'public."{table}"')):
        cursor.execute(
            f"WITH odd AS (SELECT {columns} FROM {first} EXCEPT ALL SELECT {columns} FROM {second})"
            f" SELECT (SELECT count(*) FROM odd), array(SELECT concat_ws(':', {shown}) FROM odd LIMIT {SHOWN})"
        )
        directions.append(cursor.fetchone())
    (unexplained_count, unexplained), (missing_count, missing) = directions
    if not unexplained_count and not missing_count:
        return []
    return [Divergence(table, list(unexplained), list(missing), unexplained_count, missing_count)]


def _natural_key(model: type[models.Model]) -> list[models.Field]:
    """What names a row to people: the primary key, unless it is a surrogate; then the columns of
    the first unique constraint or field, or every compared column."""
    primary = model._meta.pk
    if not isinstance(primary, models.AutoField):
        return [primary]
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
            return [model._meta.get_field(name) for name in constraint.fields]
    for names in model._meta.unique_together:
        return [model._meta.get_field(name) for name in names]
    unique = [f for f in model._meta.concrete_fields if f.unique and not isinstance(f, models.AutoField)]
    if unique:
        return unique[:1]
    return [f for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]
