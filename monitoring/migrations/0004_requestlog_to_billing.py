# RequestLog now belongs to billing (billing.0004 takes it over); its table stays.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0003_attempts_and_health_samples"),
        ("billing", "0004_requestlog_from_monitoring"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="RequestLog")],
            database_operations=[],
        ),
    ]
