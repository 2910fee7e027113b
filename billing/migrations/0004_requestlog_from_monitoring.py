# RequestLog moves from monitoring to billing (issue 14: billing writes it with the ledger,
# and the apps below monitoring read it): its table stays as it is, only Django's record of
# which app owns it changes. Its content type moves with it, so that the permissions given
# on it (staff roles) still hold.

from decimal import Decimal

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def content_type_to_billing(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="billing", model="requestlog").exists():
        ContentType.objects.filter(app_label="monitoring", model="requestlog").update(
            app_label="billing"
        )


def content_type_to_monitoring(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="monitoring", model="requestlog").exists():
        ContentType.objects.filter(app_label="billing", model="requestlog").update(
            app_label="monitoring"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_credithold_journal"),
        ("monitoring", "0003_attempts_and_health_samples"),
        ("accounts", "0006_plans"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="RequestLog",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("request_id", models.CharField(max_length=64, unique=True)),
                        ("endpoint", models.CharField(max_length=64)),
                        ("requested_model", models.CharField(blank=True, max_length=200)),
                        ("served_model", models.CharField(blank=True, max_length=200)),
                        ("provider", models.CharField(blank=True, max_length=64)),
                        ("status", models.PositiveSmallIntegerField()),
                        ("error_type", models.CharField(blank=True, max_length=64)),
                        ("prompt_tokens", models.PositiveIntegerField(default=0)),
                        ("completion_tokens", models.PositiveIntegerField(default=0)),
                        ("cached_tokens", models.PositiveIntegerField(default=0)),
                        ("cache_write_tokens", models.PositiveIntegerField(default=0)),
                        ("cost", models.DecimalField(decimal_places=12, default=Decimal("0"), max_digits=24)),
                        ("upstream_latency_ms", models.FloatField(blank=True, null=True)),
                        ("ttft_ms", models.FloatField(blank=True, null=True)),
                        ("total_latency_ms", models.FloatField()),
                        ("stream", models.BooleanField(default=False)),
                        ("attempts", models.JSONField(blank=True, default=list)),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ("api_key", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="accounts.apikey")),
                        ("user", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "db_table": "monitoring_requestlog",
                        "ordering": ("-created_at",),
                        "indexes": [models.Index(fields=["user", "-created_at"], name="monitoring__user_id_f320f8_idx")],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_billing, content_type_to_monitoring),
    ]
