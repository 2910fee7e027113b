from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from accounts.models import User
from accounts.services import api_key_create, user_create
from accounts.verification import user_email_verified
from billing.selectors import credit_account_of
from billing.services import credit_grant


class Command(BaseCommand):
    help = "Create a user (or reuse one by email), grant credit, and print a new API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--credit", type=Decimal, default=Decimal(0), help="credit to grant")
        parser.add_argument(
            "--top-up-to", type=Decimal, default=None, help="grant what lifts the balance to this"
        )
        parser.add_argument("--role", choices=User.Role.values, default=User.Role.USER)
        parser.add_argument("--key-name", default="default")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email=options["email"].lower()).first()
        if user is None:
            user = user_create(email=options["email"], role=options["role"])
            user_email_verified(user)
        api_key, raw = api_key_create(user=user, name=options["key_name"])
        amount = options["credit"]
        if options["top_up_to"] is not None:
            amount = max(options["top_up_to"] - credit_account_of(user=user).balance, Decimal(0))
        if amount > 0:
            credit_grant(
                user=user,
                amount=amount,
                reference=f"operator-grant:{api_key.pk}",
                memo="granted by create_api_user",
            )
        self.stdout.write(raw)
