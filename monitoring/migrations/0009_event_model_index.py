"""An index for the model scope of the audit log and of evidence exports (apps.MODEL_STREAMS_SQL
finds a model's streams by payload->>'model'): without it, filtering the log to one model reads
every event. Only an index: no event is rewritten."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0008_concept_packages"),
        ("audit", "0008_witness_delivery"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS audit_event_payload_model ON audit_event ((payload->>'model'))",
            reverse_sql="DROP INDEX IF EXISTS audit_event_payload_model",
        ),
    ]
