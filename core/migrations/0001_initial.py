# CacheInvalidation moves from the gateway app to core (issue 14, the ground floor): its
# table stays as it is, only Django's record of which app owns it changes.

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("gateway", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="CacheInvalidation",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("kind", models.CharField(choices=[("api_key", "Api Key"), ("catalog", "Catalog"), ("user", "User")], max_length=16)),
                        ("value", models.CharField(blank=True, max_length=100)),
                        ("created_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), db_index=True)),
                    ],
                    options={"db_table": "gateway_cacheinvalidation"},
                ),
            ],
            database_operations=[],
        ),
    ]
