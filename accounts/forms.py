"""The web pages' forms for keys: the same rules as the API's (accounts.restrictions), lists
written one entry a line."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import ApiKey
from accounts.restrictions import SCOPES, ips_clean, models_clean, referrers_clean
from providers.models import Provider

LISTS = {
    "allowed_ips": ips_clean,
    "allowed_referrers": referrers_clean,
    "allowed_models": models_clean,
}
CAPS = ("max_requests", "spend_limit_day", "spend_limit_month", "spend_limit_total")


def _lines(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
    )


def _money(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        min_value=Decimal("0.000001"),
        max_digits=18,
        decimal_places=6,
        help_text="In dollars; empty: no cap.",
    )


class KeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What it is for: “prod server”, “laptop”.")
    expires_on = forms.DateField(
        label="Expires on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Refused from the end of that day (UTC); empty: never.",
    )
    allowed_models = _lines("Allowed models", "One a line; globs work (openai/*). Empty: all.")
    allowed_ips = _lines(
        "Allowed IP addresses", "Addresses or CIDR ranges, one a line. Empty: any."
    )
    allowed_referrers = _lines("Allowed referrers", "Domains, one a line, for browser use.")
    scopes = forms.MultipleChoiceField(
        choices=[(s, f"{s}: {text}") for s, text in SCOPES.items()],
        initial=list(SCOPES),
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may do.",
    )
    max_requests = forms.IntegerField(
        label="Request cap", required=False, min_value=1, help_text="Lifetime; empty: none."
    )
    spend_limit_day = _money("Spend cap a day")
    spend_limit_month = _money("Spend cap a month")
    spend_limit_total = _money("Spend cap in all")

    @classmethod
    def for_key(cls, key: ApiKey, data: Any = None) -> KeyForm:
        initial: dict[str, Any] = {
            "name": key.name,
            "expires_on": timezone.localtime(key.expires_at).date() if key.expires_at else None,
            "scopes": key.scopes,
            **{name: "\n".join(getattr(key, name)) for name in LISTS},
            **{name: getattr(key, name) for name in CAPS},
        }
        return cls(data=data, initial=initial)

    def _clean_list(self, name: str) -> list[str]:
        entries = [line.strip() for line in self.cleaned_data[name].splitlines() if line.strip()]
        try:
            return LISTS[name](entries)
        except ValidationError as refused:
            raise ValidationError(refused.messages) from None

    def clean_allowed_models(self) -> list[str]:
        return self._clean_list("allowed_models")

    def clean_allowed_ips(self) -> list[str]:
        return self._clean_list("allowed_ips")

    def clean_allowed_referrers(self) -> list[str]:
        return self._clean_list("allowed_referrers")

    def clean_expires_on(self) -> Any:
        day = self.cleaned_data["expires_on"]
        if day is not None and day < timezone.now().date():
            raise ValidationError("That day has passed.")
        return day

    def key_fields(self) -> dict[str, Any]:
        """The cleaned values as the key's fields (accounts.services)."""
        data = dict(self.cleaned_data)
        day = data.pop("expires_on")
        data["expires_at"] = (
            datetime.combine(day, time.max, tzinfo=timezone.get_current_timezone()) if day else None
        )
        return data


class ProviderKeyForm(forms.Form):
    """One of the customer's own provider keys (BYOK), as `POST /user/provider-keys` takes it."""

    provider = forms.ModelChoiceField(
        queryset=Provider.objects.filter(enabled=True).order_by("name"), to_field_name="slug"
    )
    key = forms.CharField(
        label="Their API key",
        min_length=8,
        max_length=500,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Kept encrypted and shown only as its last characters.",
    )

    def clean_key(self) -> str:
        value = str(self.cleaned_data["key"]).strip()
        if any(c.isspace() or not c.isprintable() for c in value):
            raise ValidationError("A provider key has no spaces or control characters.")
        return value


class AccountDeletionForm(forms.Form):
    CONFIRMATION = "delete my account"

    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Your password, to prove it is you.",
    )
    confirmation = forms.CharField(label=f"Type “{CONFIRMATION}”", help_text="It cannot be undone.")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = str(self.cleaned_data["password"])
        if not self.user.check_password(password):
            raise ValidationError("That is not your password.")
        return password

    def clean_confirmation(self) -> str:
        typed = str(self.cleaned_data["confirmation"]).strip().lower()
        if typed != self.CONFIRMATION:
            raise ValidationError(f"Type “{self.CONFIRMATION}” to go on.")
        return typed
