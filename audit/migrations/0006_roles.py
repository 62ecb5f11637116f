"""Kept so that databases migrated before it stay consistent; it no longer does anything. The
groups people act in are the domain's (monitoring's migration 0008 creates them): the event
store names no role."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_evidence_export"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
