"""Credit changed by staff, for a reason: a grant (goodwill, a sales deal), a refund (credit
given back for a bad answer or a billing error) or a deduction (credit given by mistake).
Each is one ledger entry, with the reason as its memo, audited with who made it and the
balance it left (accounts.audit); the balance never goes below zero by a deduction.

Each form the admin shows carries a token that becomes the entry's reference, so a form
sent twice (a double click, a browser retry) changes the balance once."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models, transaction

from billing.models import CreditAccount, LedgerEntry
from billing.services import ledger_entry_add
from core.amounts import amount_text

# Amounts are kept to 12 places (pico-credits, as Redis keeps them).
PLACES = Decimal("0.000000000001")


class StaffOperation(models.TextChoices):
    GRANT = "grant", "Grant credit"
    REFUND = "refund", "Refund credit"
    DEDUCT = "deduct", "Deduct credit"


KINDS = {
    StaffOperation.GRANT: LedgerEntry.Kind.GRANT,
    StaffOperation.REFUND: LedgerEntry.Kind.REFUND,
    StaffOperation.DEDUCT: LedgerEntry.Kind.ADJUSTMENT,
}


class CreditRefused(ValueError):
    """The operation cannot be made as asked (the message says why, for the form)."""


@transaction.atomic
def credit_staff_adjust(
    *,
    user_id: int,
    operation: str,
    amount: Decimal,
    reason: str,
    token: str,
    unlimited: bool = True,
) -> LedgerEntry:
    """Applies a staff operation once per `token`; refuses a non-positive amount, one finer
    than a pico-credit, a blank reason, a deduction larger than the balance, and for staff
    not `unlimited` (support), an amount over GATEWAYZ_SUPPORT_CREDIT_LIMIT."""
    if amount <= 0 or amount != amount.quantize(PLACES):
        raise CreditRefused("The amount must be positive, to at most 12 decimal places.")
    limit = settings.GATEWAYZ_SUPPORT_CREDIT_LIMIT
    if not unlimited and amount > limit:
        raise CreditRefused(
            f"Support changes at most {amount_text(limit)} credits at a time; ask an admin."
        )
    if not reason.strip():
        raise CreditRefused("A reason is required.")
    kind = KINDS[StaffOperation(operation)]
    reference = f"staff:{token}"
    done = LedgerEntry.objects.filter(kind=kind, reference=reference).first()
    if done is not None:
        return done  # this form was sent before
    signed = amount
    if operation == StaffOperation.DEDUCT:
        # Under the account row's lock: a deduction racing usage or another deduction sees
        # the balance they leave.
        account, _ = CreditAccount.objects.select_for_update().get_or_create(user_id=user_id)
        if account.balance < amount:
            raise CreditRefused(
                f"The balance is {amount_text(account.balance)}: a deduction cannot take it "
                "below zero."
            )
        signed = -amount
    return ledger_entry_add(
        user_id=user_id, kind=kind, amount=signed, reference=reference, memo=reason.strip()[:200]
    )
