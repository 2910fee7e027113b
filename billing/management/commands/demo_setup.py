from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.keys import key_digest
from accounts.models import ApiKey, User
from accounts.services import api_key_create, user_create
from billing.services import credit_grant

DEMO_EMAIL = "demo@gatewayz.local"


class Command(BaseCommand):
    help = "For `make run`: load the catalog with the offline demo provider and print a demo key."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        call_command("load_catalog", demo=True, stdout=self.stderr)
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = user_create(email=DEMO_EMAIL)
            credit_grant(user=user, amount=settings.GATEWAYZ_DEMO_CREDIT, reference="demo-setup")
        # The demo key is kept in var/ so each `make run` prints the same one.
        key_file = settings.VAR_DIR / "demo-key.txt"
        raw = key_file.read_text().strip() if key_file.exists() else ""
        active = ApiKey.objects.filter(
            digest=key_digest(raw), user=user, revoked_at__isnull=True
        ).exists()
        if not active:
            _, raw = api_key_create(user=user, name="demo")
            key_file.write_text(raw + "\n")
            key_file.chmod(0o600)
        self.stdout.write(raw)
