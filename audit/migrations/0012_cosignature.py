"""Witness cosignatures of checkpoints (bundle format version 2)."""

import django.db.models.deletion
from django.db import migrations, models

from audit.migrations._append_only import install_sql, remove_sql


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0011_partitioned_log'),
    ]

    operations = [
        migrations.CreateModel(
            name='Cosignature',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('witness_id', models.CharField(max_length=16)),
                ('cosigned_at', models.CharField(max_length=27)),
                ('signature', models.CharField(max_length=100)),
                ('checkpoint', models.ForeignKey(db_column='tree_size', on_delete=django.db.models.deletion.PROTECT, to='audit.checkpoint')),
            ],
            options={
                'db_table': 'audit_cosignature',
                'constraints': [models.UniqueConstraint(fields=('checkpoint', 'witness_id'), name='one_cosignature_per_witness')],
            },
        ),
        # Cosignatures are kept as received: append-only like the checkpoints they vouch for.
        migrations.RunSQL(install_sql(["audit_cosignature"]), remove_sql(["audit_cosignature"])),
    ]
