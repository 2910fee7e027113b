"""Re-encrypts every stored provider credential under the key ring's current key.

Rotation: put the new key first in GATEWAYZ_CREDENTIAL_KEYS (keep the old ones after it),
deploy, run this, then remove the old keys. Safe to repeat; a credential no key of the
ring opens is reported and left as it is."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from providers.credentials import InvalidToken, credential_rotate
from providers.models import Provider, ProviderKey


class Command(BaseCommand):
    help = "Re-encrypt stored provider credentials under the current credential key."

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = unreadable = 0
        with transaction.atomic():
            for provider in Provider.objects.select_for_update().exclude(credential_ciphertext=""):
                try:
                    provider.credential_ciphertext = credential_rotate(
                        provider.credential_ciphertext
                    )
                except InvalidToken:
                    unreadable += 1
                    self.stderr.write(f"provider {provider.slug}: no key of the ring opens it")
                    continue
                provider.save(update_fields=["credential_ciphertext"])
                rotated += 1
            for key in ProviderKey.objects.select_for_update():
                try:
                    key.ciphertext = credential_rotate(key.ciphertext)
                except InvalidToken:
                    unreadable += 1
                    self.stderr.write(f"provider key {key.pk}: no key of the ring opens it")
                    continue
                key.save(update_fields=["ciphertext"])
                rotated += 1
        self.stdout.write(f"{rotated} credential(s) re-encrypted, {unreadable} unreadable")
        if unreadable:
            raise SystemExit(1)
