from django.db import migrations, models


class Migration(migrations.Migration):
    """Incremental verifications: the first seq a verification checked (1: all of them)."""

    dependencies = [
        ("audit", "0008_witness_delivery"),
    ]

    operations = [
        migrations.AddField(
            model_name="logverification",
            name="first_seq",
            field=models.BigIntegerField(default=1),
        ),
    ]
