"""Credit amounts as text: exact, shortest, never in exponent notation (`Decimal("10")
.normalize()` prints as `1E+1`, which no client expects of a balance)."""

from __future__ import annotations

from decimal import Decimal


def amount_text(amount: Decimal) -> str:
    return format(amount.normalize(), "f")
