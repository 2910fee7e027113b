"""Re-encrypts every stored provider credential under the key ring's current key.

Rotation: put the new key first in GATEWAYZ_CREDENTIAL_KEYS (keep the old ones after it),
deploy, run this, then remove the old keys. Safe to repeat; a credential no key of the
ring opens is reported and left as it is."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import QuerySet

from providers.credentials import CredentialUnreadable, credential_rotate
from providers.models import Provider, ProviderKey


class Command(BaseCommand):
    help = "Re-encrypt stored provider credentials under the current credential key."

    def handle(self, *args: Any, **options: Any) -> None:
        stored: list[tuple[QuerySet[Any], str]] = [
            (Provider.objects.exclude(credential_ciphertext=""), "credential_ciphertext"),
            (ProviderKey.objects.all(), "ciphertext"),
        ]
        rotated = unreadable = 0
        with transaction.atomic():
            for rows, field in stored:
                for row in rows.select_for_update():
                    try:
                        setattr(row, field, credential_rotate(getattr(row, field)))
                    except CredentialUnreadable:
                        unreadable += 1
                        self.stderr.write(f"{row._meta.verbose_name} {row.pk}: no key opens it")
                        continue
                    row.save(update_fields=[field])
                    rotated += 1
        self.stdout.write(f"{rotated} credential(s) re-encrypted, {unreadable} unreadable")
        if unreadable:
            raise SystemExit(1)
