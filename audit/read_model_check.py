"""Read models checked against the log: every projection is replayed from the log into scratch
copies of its tables, in a temporary schema of a transaction that is then rolled back, and the
scratch rows are compared with the live ones. A row the log does not give (forged, or changed in
place) or a row it gives that is missing or different is named by table and key.

The replay is the one `rebuild_projections` runs: unqualified table names resolve to the scratch
schema first (search_path), and the log and every other table to the live ones. Surrogate keys
(auto-increment ids) are left out of the comparison: a replay numbers its rows anew.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, models, transaction

from audit import projections

SCRATCH = "read_model_replay"
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
    tables = [model for projection in projections.registered() for model in projection.models]
    found: list[Divergence] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {SCRATCH}")
            for model in tables:
                table = model._meta.db_table
                cursor.execute(
                    f'CREATE TABLE {SCRATCH}."{table}" (LIKE public."{table}" INCLUDING DEFAULTS INCLUDING IDENTITY)'
                )
            cursor.execute(f"SET LOCAL search_path = {SCRATCH}, public")
        projections.rebuild()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL search_path = public")
            for model in tables:
                divergence = _compare(cursor, model)
                if divergence is not None:
                    found.append(divergence)
        transaction.set_rollback(True)  # the scratch schema and everything in it go
    return found


def _compare(cursor, model: type[models.Model]) -> Divergence | None:
    table = model._meta.db_table
    compared = [f.column for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]
    key = [f.column for f in _natural_key(model)]
    columns = ", ".join(f'"{c}"' for c in compared)
    shown = ", ".join(f'"{c}"::text' for c in key)
    directions = []
    for first, second in ((f'public."{table}"', f'{SCRATCH}."{table}"'), (f'{SCRATCH}."{table}"', f'public."{table}"')):
        cursor.execute(
            f"WITH odd AS (SELECT {columns} FROM {first} EXCEPT ALL SELECT {columns} FROM {second})"
            f" SELECT (SELECT count(*) FROM odd), array(SELECT concat_ws(':', {shown}) FROM odd LIMIT {SHOWN})"
        )
        directions.append(cursor.fetchone())
    (unexplained_count, unexplained), (missing_count, missing) = directions
    if not unexplained_count and not missing_count:
        return None
    return Divergence(table, list(unexplained), list(missing), unexplained_count, missing_count)


def _natural_key(model: type[models.Model]) -> list[models.Field]:
    """What names a row to people: the primary key, unless it is a surrogate; then the columns of
    the first unique constraint, or every compared column."""
    primary = model._meta.pk
    if not isinstance(primary, models.AutoField):
        return [primary]
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
            return [model._meta.get_field(name) for name in constraint.fields]
    for names in model._meta.unique_together:
        return [model._meta.get_field(name) for name in names]
    return [f for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]
