"""Template filters of the web pages: money as people read it (core.amounts; "—" for
none), and form fields in the UI kit's markup (Tabler's classes, the error tied to its
input for screen readers)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.forms import BoundField, CheckboxInput, Select, SelectMultiple
from django.utils.safestring import SafeString

from core.amounts import cents_text, dollars_precise_text, dollars_text

register = template.Library()


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None


@register.filter
def dollars(value: Any) -> str:
    amount = _decimal(value)
    return "—" if amount is None else dollars_text(amount)


@register.filter
def dollars_precise(value: Any) -> str:
    amount = _decimal(value)
    return "—" if amount is None else dollars_precise_text(amount)


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
    return "—" if value is None or value == "" else cents_text(int(value))


@register.filter
def percent(value: Any) -> str:
    """A rate (0-1) as people read it: `2.5%`."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.1f}%"
