"""A customer's billing settings: the low-balance notice's threshold and auto top-up. The
rules (an amount within the top-up range, a saved card before auto top-up is on) are the
same for the API (payments.settings_api) and the billing page (payments.pages)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

from accounts.models import User
from core.amounts import amount_text
from payments.models import BillingSettings

UNSET: Any = object()


class SettingsRefused(ValueError):
    def __init__(self, message: str, code: str, param: str) -> None:
        super().__init__(message)
        self.code, self.param = code, param


def billing_settings_of(user: User) -> BillingSettings:
    row, _ = BillingSettings.objects.get_or_create(user=user)
    return row


def billing_settings_update(
    *,
    user: User,
    low_balance_threshold: Decimal | None = UNSET,
    auto_topup_enabled: bool = UNSET,
    auto_topup_threshold: Decimal = UNSET,
    auto_topup_amount: Decimal = UNSET,
) -> BillingSettings:
    """Changes what is given (UNSET: kept); SettingsRefused, with nothing saved, when the
    result breaks a rule."""
    row = billing_settings_of(user)
    if low_balance_threshold is not UNSET:
        row.low_balance_threshold = low_balance_threshold  # type: ignore[assignment]  # nullable
        row.low_balance_notified_at = None  # a new threshold: noticed afresh
    low, high = settings.GATEWAYZ_TOPUP_MIN, settings.GATEWAYZ_TOPUP_MAX
    amount = row.auto_topup_amount if auto_topup_amount is UNSET else auto_topup_amount
    if not low <= amount <= high:
        message = f"The amount must be between {amount_text(low)} and {amount_text(high)}."
        raise SettingsRefused(message, "invalid_request", "auto_topup_amount")
    row.auto_topup_amount = amount
    if auto_topup_threshold is not UNSET:
        row.auto_topup_threshold = auto_topup_threshold
    enabled = row.auto_topup_enabled if auto_topup_enabled is UNSET else auto_topup_enabled
    if enabled and not row.payment_method_id:
        message = "No card is saved: buy credits once with save_card first."
        raise SettingsRefused(message, "no_saved_card", "auto_topup_enabled")
    if enabled and not row.auto_topup_enabled:
        row.auto_topup_failures, row.auto_topup_failed_at = 0, None  # a fresh start
    row.auto_topup_enabled = enabled
    row.save()
    return row
