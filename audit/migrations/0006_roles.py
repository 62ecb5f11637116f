"""The groups people act in (DESIGN.md, users). Permissions per role live in the API's checks."""

from django.db import migrations

ROLES = ("ml_engineer", "risk_approver", "compliance_officer", "auditor", "admin")


def create_groups(apps, schema_editor):
    group = apps.get_model("auth", "Group")
    for name in ROLES:
        group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_evidence_export"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
