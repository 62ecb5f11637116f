"""Values compressed with lz4 instead of pglz where the server is built with lz4 (pg_settings
lists it): the database's default_toast_compression, which every new session takes. An event's
row is past 2 kB, so its canonical bytes and payload are compressed on insert; with lz4 the
server spends a sixth to a fifth less CPU on each sealed event (bench/compression.py), for 2 to
3 % more disk on those two columns.

A database setting, not a column's: a dump then names no compression method (pg_dump writes a
column's), so it restores on a server built without lz4 too, and a restored database takes its
new server's default. Only values written from now on are compressed so; no stored event is
touched. A server without lz4 (the embedded PostgreSQL's build) keeps pglz.
"""

from django.db import migrations

LZ4 = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        EXECUTE format('ALTER DATABASE %I SET default_toast_compression = lz4', current_database());
        SET default_toast_compression = lz4;  -- this session too: it may go on appending
    END IF;
END
$$;
"""
DEFAULT = """
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I RESET default_toast_compression', current_database());
    RESET default_toast_compression;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0013_event_plain_indexes")]

    operations = [migrations.RunSQL(LZ4, DEFAULT)]
