from decimal import Decimal

from django.db import migrations

# Free leaves every limit to the defaults (GATEWAYZ_USER_*): an account with no plan is on
# it. Pro and Max raise them and their priority. Staff edit all of it in the admin.
PLANS = [
    {"slug": "free", "name": "Free", "position": 0, "priority": "low",
     "description": "Pay as you go with purchased credit."},
    {"slug": "pro", "name": "Pro", "position": 1, "price_cents": 800,
     "allowance": Decimal("15"), "priority": "default",
     "description": "$15 of usage a month for $8, and higher limits.",
     "limit_rpm": 600, "limit_rpd": 50_000, "limit_tpm": 2_000_000,
     "limit_tpd": 50_000_000, "limit_concurrent": 50},
    {"slug": "max", "name": "Max", "position": 2, "price_cents": 7500,
     "allowance": Decimal("150"), "priority": "high",
     "description": "$150 of usage a month for $75, the highest limits and priority.",
     "limit_rpm": 3000, "limit_rpd": 500_000, "limit_tpm": 10_000_000,
     "limit_tpd": 500_000_000, "limit_concurrent": 200},
]


def seed(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    for fields in PLANS:
        if not Plan.objects.filter(slug=fields["slug"]).exists():
            Plan.objects.create(**fields)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0009_plan_prices")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
