# CacheInvalidation now belongs to core (core.0001 takes it over); its table stays.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("gateway", "0001_initial"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="CacheInvalidation")],
            database_operations=[],
        ),
    ]
