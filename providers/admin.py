from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from providers.byok import provider_key_delete
from providers.catalog_file import catalog_changed
from providers.models import Alias, Model, Offering, Provider, ProviderKey


class CatalogAdmin(admin.ModelAdmin):
    """Every edit tells all gateway processes to reload the catalog, and is kept in the audit
    log with the values before and after (accounts.audit): the page links to that history."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_readonly_fields(request, obj), "edit_history")

    @admin.display(description="Edit history")
    def edit_history(self, obj: Any) -> str:
        if obj is None or obj.pk is None:
            return ""
        try:  # the audit log's page (accounts', named by URL only: it sits above providers)
            url = reverse("admin:accounts_auditentry_changelist")
        except NoReverseMatch:
            return ""
        return format_html(
            '<a href="{}?target_type={}&amp;target_id={}">Every change to it: who, when, the '
            "values before and after</a>",
            url,
            obj._meta.label_lower,
            obj.pk,
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            catalog_changed()

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            super().delete_model(request, obj)
            catalog_changed()

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with transaction.atomic():
            super().delete_queryset(request, queryset)
            catalog_changed()


class OfferingInline(admin.TabularInline):
    model = Offering
    extra = 0


class ProviderForm(forms.ModelForm):
    """The platform's key is write-only: typed in, stored encrypted, shown only as a hint."""

    credential = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The provider's API key, stored encrypted. Leave empty to keep the current "
        "one. Or name an environment variable below instead.",
    )
    credential_clear = forms.BooleanField(required=False, label="Remove the stored key")

    class Meta:
        model = Provider
        fields = (
            "slug",
            "name",
            "protocol",
            "base_url",
            "auth",
            "extra_headers",
            "drop_params",
            "unsupported_params",
            "rename_params",
            "credential_env",
            "connect_timeout",
            "read_timeout",
            "enabled",
        )

    def save(self, commit: bool = True) -> Provider:
        provider: Provider = super().save(commit=False)
        if self.cleaned_data.get("credential"):
            provider.credential_set(self.cleaned_data["credential"])
        elif self.cleaned_data.get("credential_clear"):
            provider.credential_set("")
        if commit:
            provider.save()
        return provider


@admin.register(Provider)
class ProviderAdmin(CatalogAdmin):
    form = ProviderForm
    list_display = ("slug", "name", "protocol", "base_url", "credential_source", "enabled")
    readonly_fields = ("credential_hint",)
    list_filter = ("protocol", "enabled")
    search_fields = ("slug", "name")

    @admin.display(description="credential")
    def credential_source(self, provider: Provider) -> str:
        if provider.credential_ciphertext:
            return f"stored {provider.credential_hint}"
        return f"${provider.credential_env}" if provider.credential_env else "none"


@admin.register(Model)
class ModelAdmin(CatalogAdmin):
    list_display = (
        "canonical_id",
        "name",
        "routing_strategy",
        "context_length",
        "max_output_tokens",
    )
    search_fields = ("canonical_id", "name")
    inlines = (OfferingInline,)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_related(request, form, formsets, change)
            catalog_changed()


@admin.register(Offering)
class OfferingAdmin(CatalogAdmin):
    list_display = (
        "model",
        "provider",
        "upstream_model_id",
        "input_price",
        "output_price",
        "cached_input_price",
        "priority",
        "weight",
        "enabled",
    )
    list_filter = ("provider", "enabled")
    search_fields = ("model__canonical_id", "upstream_model_id")


@admin.register(Alias)
class AliasAdmin(CatalogAdmin):
    list_display = ("alias", "model")
    search_fields = ("alias",)


@admin.register(ProviderKey)
class ProviderKeyAdmin(admin.ModelAdmin):
    """Customers' own provider keys: who holds one for what, never the key."""

    list_display = ("user", "provider", "hint", "created_at")
    list_select_related = ("user", "provider")
    search_fields = ("user__email", "provider__slug")
    fields = ("user", "provider", "hint", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # only their owners add them (the customer API)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # Removed through the service, so every gateway process stops using it within a poll.
    def delete_model(self, request: HttpRequest, obj: ProviderKey) -> None:
        provider_key_delete(key=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for key in queryset:
            provider_key_delete(key=key)
