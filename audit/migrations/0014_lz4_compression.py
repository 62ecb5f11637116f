"""Values compressed with lz4 instead of pglz where the server is built with lz4 (pg_settings
lists it): the database's default_toast_compression, which every new session takes. An event's
row is past 2 kB, so its canonical bytes and payload are compressed on insert; with lz4 the
server spends a sixth to a fifth less CPU on each sealed event (bench/compression.py), for 2 to
3 % more disk on those two columns.

A database setting, not a column's: a dump then names no compression method (pg_dump writes a
column's), so it restores on a server built without lz4 too, and a restored database takes its
new server's default. Only values written from now on are compressed so; no stored event is
touched. A server without lz4 (the embedded PostgreSQL's build) keeps pglz, and a database whose
owner is not the role that migrates keeps the server's default.
"""

from django.db import migrations

# Only the database's owner may set its defaults: a schema owner that is not (deploy/roles.sql
# allows it) gets a warning, and the operator sets it (deploy/README.md), or postgresql.conf does.
LZ4 = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        SET default_toast_compression = lz4;  -- this session too: it may go on appending
        EXECUTE format('ALTER DATABASE %I SET default_toast_compression = lz4', current_database());
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'lz4 is not the default compression of database %: only its owner may make it so '
        '(ALTER DATABASE % SET default_toast_compression = lz4)', current_database(), current_database();
END
$$;
"""
DEFAULT = """
DO $$
BEGIN
    RESET default_toast_compression;
    EXECUTE format('ALTER DATABASE %I RESET default_toast_compression', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    NULL;  -- it was never set by this role
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0013_event_plain_indexes")]

    operations = [migrations.RunSQL(LZ4, DEFAULT)]
