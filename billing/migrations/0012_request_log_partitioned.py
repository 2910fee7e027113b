# The request log partitioned by month on Postgres (billing.retention); settlement's
# idempotency moves from the log's unique request_id to SettledRequest, filled here with
# every request already logged.

from django.db import migrations, models


def settled_ids_copy(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_settledrequest (request_id, settled_at) "
            "SELECT request_id, created_at FROM monitoring_requestlog"
        )


def log_partition(apps, schema_editor):
    from billing.retention import log_partition

    log_partition()


def log_unpartition(apps, schema_editor):
    from billing.retention import log_unpartition

    log_unpartition()


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ("billing", "0011_requestlog_failures_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="SettledRequest",
            fields=[
                ("request_id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("settled_at", models.DateTimeField(db_index=True)),
            ],
        ),
        migrations.RunPython(settled_ids_copy, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="requestlog",
            name="request_id",
            field=models.CharField(db_index=True, max_length=64),
        ),
        migrations.RunPython(log_partition, log_unpartition, elidable=False),
    ]
