"""The event table keeps its plain indexes on event_type and actor_id (renamed, as model
indexes now) and drops their LIKE twins (varchar_pattern_ops), which Django makes for db_index
and no query uses: each sealed event wrote them too. Dropped on the partitioned table, they go
from every partition; no event is touched."""

from django.db import migrations, models

FORWARD = """
DROP INDEX IF EXISTS audit_event_event_type_5815a06c_like;
DROP INDEX IF EXISTS audit_event_actor_id_fdb5de2b_like;
ALTER INDEX audit_event_event_type_5815a06c RENAME TO audit_event_type;
ALTER INDEX audit_event_actor_id_fdb5de2b RENAME TO audit_event_actor;
"""
BACKWARD = """
ALTER INDEX audit_event_type RENAME TO audit_event_event_type_5815a06c;
ALTER INDEX audit_event_actor RENAME TO audit_event_actor_id_fdb5de2b;
CREATE INDEX audit_event_event_type_5815a06c_like ON audit_event (event_type varchar_pattern_ops);
CREATE INDEX audit_event_actor_id_fdb5de2b_like ON audit_event (actor_id varchar_pattern_ops);
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0012_cosignature")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, BACKWARD)],
            state_operations=[
                migrations.AlterField("event", "event_type", models.CharField(max_length=100)),
                migrations.AlterField("event", "actor_id", models.CharField(max_length=200)),
                migrations.AddIndex("event", models.Index(fields=["event_type"], name="audit_event_type")),
                migrations.AddIndex("event", models.Index(fields=["actor_id"], name="audit_event_actor")),
            ],
        )
    ]
