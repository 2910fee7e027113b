"""Credit amounts as text: exact, shortest, never in exponent notation (`Decimal("10")
.normalize()` prints as `1E+1`, which no client expects of a balance)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def amount_text(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


CENTS = Decimal("0.01")
MICRO = Decimal("0.000001")


def _rounded(amount: Decimal, quantum: Decimal) -> tuple[str, Decimal]:
    rounded = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    return ("-" if amount < 0 else ""), abs(rounded)


def dollars_text(amount: Decimal) -> str:
    """A balance or a total as people read it: `$1,234.56` (1 credit is 1 dollar), rounded
    to the cent; spent but under a cent reads `< $0.01`, never `$0.00`."""
    sign, rounded = _rounded(amount, CENTS)
    if not rounded and amount:
        return f"{sign}< $0.01"
    return f"{sign}${rounded:,.2f}"


def dollars_precise_text(amount: Decimal) -> str:
    """One request's cost: up to six decimals (`$0.000042`), at least two."""
    sign, rounded = _rounded(amount, MICRO)
    whole, _, fraction = f"{rounded:,.6f}".rstrip("0").partition(".")
    return f"{sign}${whole}.{fraction.ljust(2, '0')}"


def cents_text(cents: int) -> str:
    """A price kept in cents (Stripe's unit): `$19.99`."""
    return f"${Decimal(cents) / 100:,.2f}"
