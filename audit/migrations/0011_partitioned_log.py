"""The event table partitioned by seq range (declarative partitioning), without rewriting an event.

The table as it stands becomes the first partition, closed at the log's current length: no row is
moved, updated or copied; the partitioned `audit_event` takes its name, columns, check constraints,
indexes and append-only triggers. Later partitions are added ahead of the log by
`audit_partition_room` (below), from the append path, AUDIT_PARTITION_EVENTS seqs each.

PostgreSQL requires a unique index on a partitioned table to contain the partition key, so the
log's two uniqueness rules (an event id once; a stream version once) move to `audit_event_key`,
one narrow row per event written by a trigger in the inserting statement. Its rows are copied
from the events (they are derived, like an index), and it is append-only like the log.
"""

from django.db import migrations, models

KEY_TABLE = """
CREATE TABLE audit_event_key (
    event_id uuid PRIMARY KEY,
    stream_type varchar(100) NOT NULL,
    stream_id varchar(200) NOT NULL,
    stream_version integer NOT NULL,
    seq bigint NOT NULL,
    CONSTRAINT audit_event_key_stream_version UNIQUE (stream_type, stream_id, stream_version)
);
INSERT INTO audit_event_key (event_id, stream_type, stream_id, stream_version, seq)
    SELECT event_id, stream_type, stream_id, stream_version, seq FROM audit_event ORDER BY seq;

-- Once per statement, from its transition table: a sealed batch's keys in one INSERT.
CREATE FUNCTION audit_event_key_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_event_key (event_id, stream_type, stream_id, stream_version, seq)
        SELECT event_id, stream_type, stream_id, stream_version, seq FROM inserted;
    RETURN NULL;
END
$$;

CREATE TABLE audit_log_partition (
    name text PRIMARY KEY,
    first_seq bigint NOT NULL,
    end_seq bigint NOT NULL UNIQUE,  -- exclusive
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_log_partition_range CHECK (end_seq >= first_seq)
);
"""

# The table as it is becomes the first partition: its unique constraints give way to the key
# table, its row trigger to the parent's (cloned onto it), its indexes' names to the parent's.
PARTITIONED = """
DO $$
DECLARE
    definitions text[];
    definition text;
    index_name text;
    log_end bigint;
BEGIN
    ALTER TABLE audit_event DROP CONSTRAINT audit_event_stream_version;
    ALTER TABLE audit_event DROP CONSTRAINT audit_event_event_id_key;
    SELECT array_agg(indexdef) INTO definitions
      FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'audit_event'
       AND indexname <> 'audit_event_pkey';
    ALTER TABLE audit_event RENAME TO audit_event_p1;
    DROP TRIGGER audit_event_no_update_delete ON audit_event_p1;
    ALTER TRIGGER audit_event_no_truncate ON audit_event_p1 RENAME TO audit_event_p1_no_truncate;
    FOR index_name IN SELECT indexname FROM pg_indexes
                       WHERE schemaname = current_schema() AND tablename = 'audit_event_p1' LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', index_name, left('audit_event_p1_' || index_name, 63));
    END LOOP;

    CREATE TABLE audit_event (LIKE audit_event_p1 INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)
        PARTITION BY RANGE (seq);
    ALTER TABLE audit_event ADD CONSTRAINT audit_event_pkey PRIMARY KEY (seq);
    FOREACH definition IN ARRAY coalesce(definitions, '{}') LOOP
        EXECUTE definition;
    END LOOP;
    CREATE INDEX audit_event_event_id ON audit_event (event_id);
    CREATE INDEX audit_event_stream ON audit_event (stream_type, stream_id, stream_version);

    CREATE TRIGGER audit_event_no_update_delete BEFORE UPDATE OR DELETE ON audit_event
        FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
    CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
    CREATE TRIGGER audit_event_key_insert AFTER INSERT ON audit_event
        REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION audit_event_key_record();

    ALTER TABLE audit_event ENABLE ALWAYS TRIGGER audit_event_no_update_delete;
    ALTER TABLE audit_event ENABLE ALWAYS TRIGGER audit_event_no_truncate;
    ALTER TABLE audit_event ENABLE ALWAYS TRIGGER audit_event_key_insert;
    SELECT coalesce(max(seq), 0) + 1 INTO log_end FROM audit_event_p1;
    IF log_end = 1 THEN  -- no event yet: the first append makes the partitions
        DROP TABLE audit_event_p1;
    ELSE
        EXECUTE format('ALTER TABLE audit_event ATTACH PARTITION audit_event_p1 FOR VALUES FROM (1) TO (%s)', log_end);
        INSERT INTO audit_log_partition (name, first_seq, end_seq) VALUES ('audit_event_p1', 1, log_end);
        ALTER TABLE audit_event_p1 ENABLE ALWAYS TRIGGER audit_event_no_update_delete;
        CREATE TRIGGER audit_event_p1_key_insert AFTER INSERT ON audit_event_p1  -- inserts naming the partition
            REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION audit_event_key_record();
        ALTER TABLE audit_event_p1 ENABLE ALWAYS TRIGGER audit_event_p1_key_insert;
    END IF;
END
$$;
"""

# Partitions ahead of the log, owned by the schema's owner (SECURITY DEFINER): the application
# role, which may only read and append, still gets room for what it appends. It creates only what
# `count` events appended now and `ahead` more need past the head, so no caller can fill the
# catalogue. A new partition is created apart and attached (SHARE UPDATE EXCLUSIVE on the log:
# readers are not blocked, unlike CREATE TABLE ... PARTITION OF).
ROOM = """
CREATE FUNCTION audit_partition_room(count bigint, ahead bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    head bigint;
    log_end bigint;
    name text;
BEGIN
    IF count < 0 OR count > 10000000 OR ahead < 1 OR ahead > 1000000000 THEN
        RAISE EXCEPTION 'audit_partition_room: count must be 0 to 10,000,000 and ahead 1 to 1,000,000,000';
    END IF;
    SELECT coalesce(max(seq), 0) INTO head FROM audit_event;
    SELECT coalesce(max(end_seq), 1) INTO log_end FROM audit_log_partition;
    WHILE log_end <= head + count + ahead LOOP
        name := 'audit_event_p' || log_end;
        EXECUTE format('CREATE TABLE %I (LIKE audit_event INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)',
                       name);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (seq >= %s AND seq < %s)',
                       name, name || '_range', log_end, log_end + ahead);
        EXECUTE format('ALTER TABLE audit_event ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                       name, log_end, log_end + ahead);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()',
                       name || '_no_truncate', name);
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER %I', name, name || '_no_truncate');
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER audit_event_no_update_delete', name);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS inserted'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION audit_event_key_record()', name || '_key_insert', name);
        EXECUTE format('ALTER TABLE %I ENABLE ALWAYS TRIGGER %I', name, name || '_key_insert');
        INSERT INTO audit_log_partition (name, first_seq, end_seq) VALUES (name, log_end, log_end + ahead);
        log_end := log_end + ahead;
    END LOOP;
    RETURN log_end;
END
$$;
"""

# The refusal names the log's table, and the partition the row is in.
REFUSAL = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent text;
BEGIN
    SELECT inhparent::regclass::text INTO parent FROM pg_inherits WHERE inhrelid = TG_RELID;
    RAISE EXCEPTION 'driftledger audit log is append-only: % on % is refused%', TG_OP,
        coalesce(parent, TG_TABLE_NAME), CASE WHEN parent IS NULL THEN '' ELSE ' (partition ' || TG_TABLE_NAME || ')' END
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

APPEND_ONLY_KEYS = """
CREATE TRIGGER audit_event_key_no_update_delete BEFORE UPDATE OR DELETE ON audit_event_key
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_event_key_no_truncate BEFORE TRUNCATE ON audit_event_key
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
ALTER TABLE audit_event_key ENABLE ALWAYS TRIGGER audit_event_key_no_update_delete;
ALTER TABLE audit_event_key ENABLE ALWAYS TRIGGER audit_event_key_no_truncate;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0010_sequencer")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(KEY_TABLE + PARTITIONED + ROOM + REFUSAL + APPEND_ONLY_KEYS)],
            state_operations=[
                migrations.AlterField(model_name="event", name="event_id", field=models.UUIDField()),
                migrations.RemoveConstraint(model_name="event", name="audit_event_stream_version"),
                migrations.AddIndex(
                    model_name="event", index=models.Index(fields=["event_id"], name="audit_event_event_id")
                ),
                migrations.AddIndex(
                    model_name="event",
                    index=models.Index(fields=["stream_type", "stream_id", "stream_version"], name="audit_event_stream"),
                ),
                migrations.CreateModel(
                    name="EventKey",
                    fields=[
                        ("event_id", models.UUIDField(primary_key=True, serialize=False)),
                        ("stream_type", models.CharField(max_length=100)),
                        ("stream_id", models.CharField(max_length=200)),
                        ("stream_version", models.IntegerField()),
                        ("seq", models.BigIntegerField()),
                    ],
                    options={
                        "db_table": "audit_event_key",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("stream_type", "stream_id", "stream_version"),
                                name="audit_event_key_stream_version",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="LogPartition",
                    fields=[
                        ("name", models.TextField(primary_key=True, serialize=False)),
                        ("first_seq", models.BigIntegerField()),
                        ("end_seq", models.BigIntegerField(unique=True)),
                        ("created_at", models.DateTimeField()),
                    ],
                    options={"db_table": "audit_log_partition"},
                ),
            ],
        )
    ]
