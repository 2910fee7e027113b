"""Template filters of the web pages: money as people read it, and form fields in the UI
kit's markup (Tabler's classes, the error tied to its input for screen readers)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django import template
from django.forms import BoundField, CheckboxInput, Select, SelectMultiple
from django.utils.safestring import SafeString

register = template.Library()

CENTS = Decimal("0.01")
MICRO = Decimal("0.000001")


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None


@register.filter
def dollars(value: Any) -> str:
    """A balance or a total: `$1,234.56` (credits are dollars), rounded to the cent."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    rounded = amount.quantize(CENTS, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    if not rounded and amount:  # spent, but under a cent: not "$0.00"
        return f"{sign}< $0.01"
    return f"{sign}${abs(rounded):,.2f}"


@register.filter
def dollars_precise(value: Any) -> str:
    """One request's cost: up to six decimals (`$0.000042`), at least two."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    rounded = amount.quantize(MICRO, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    text = f"{abs(rounded):,.6f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{sign}${whole}.{fraction.ljust(2, '0')}"


def _kit_class(field: BoundField) -> str:
    widget = field.field.widget
    if isinstance(widget, CheckboxInput):
        return "form-check-input"
    if isinstance(widget, Select) and not isinstance(widget, SelectMultiple):
        return "form-select"
    return "form-control"


@register.filter
def input_for(field: BoundField) -> SafeString:
    """The field's widget with the kit's class, marked invalid and pointing at its error
    text when the server refused it."""
    attrs: dict[str, str | bool] = {"class": _kit_class(field)}
    if field.errors:
        attrs["class"] = f"{attrs['class']} is-invalid"
        attrs["aria-invalid"] = "true"
        attrs["aria-describedby"] = f"{field.auto_id}-error"
    elif field.help_text:
        attrs["aria-describedby"] = f"{field.auto_id}-help"
    return field.as_widget(attrs=attrs)


@register.filter
def cents(value: Any) -> str:
    """A price kept in cents (Stripe's unit): `$19.99`."""
    if value is None or value == "":
        return "—"
    return dollars(Decimal(int(value)) / 100)


@register.filter
def percent(value: Any) -> str:
    """A rate (0-1) as people read it: `2.5%`."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.1f}%"
