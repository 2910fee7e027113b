from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts.models import ApiKey, AuditEntry, Plan, User
from accounts.services import api_key_revoke
from accounts.verification import user_email_verified
from core.amounts import dollars_text
from core.readonly_admin import ReadOnlyAdmin

# Groups of fields in the forms below; a plan and a key have the same limit fields.
LIMITS = ("limit_rpm", "limit_rph", "limit_rpd", "limit_tpm", "limit_tpd", "limit_concurrent")
CAPS = ("max_requests", "spend_limit_day", "spend_limit_month", "spend_limit_total")
RESTRICTIONS = ("allowed_ips", "allowed_referrers", "allowed_models", "scopes")


class SuspensionForm(forms.Form):
    reason = forms.CharField(
        max_length=200, help_text="Shown to staff and kept in the audit log with your name."
    )


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "role", "plan", "balance", "suspended", "is_active", "date_joined")
    list_filter = ("role", "plan", "is_active", "is_staff")
    search_fields = ("email",)
    fieldsets = (
        (None, {"fields": ("email", "password", "role", "plan")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        (
            "Suspension (keys refused with a 403; a disputed payment sets it)",
            {"fields": ("suspended_at", "suspension_reason")},
        ),
        ("Money", {"fields": ("money_links",)}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("money_links",)
    actions = ("suspend", "unsuspend")
    add_fieldsets = ((None, {"fields": ("email", "role", "password1", "password2")}),)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:  # staff vouch for the address of an account they create
            user_email_verified(obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        # The ledger's balance, by the relation's name (billing's model, not imported here).
        return (
            super()
            .get_queryset(request)
            .select_related("plan")
            .annotate(ledger_balance=F("credit_account__balance"))
        )

    @admin.display(description="Balance", ordering="ledger_balance")
    def balance(self, user: User) -> str:
        balance = getattr(user, "ledger_balance", None)
        return "—" if balance is None else dollars_text(balance)

    @admin.display(description="Suspended", boolean=True, ordering="suspended_at")
    def suspended(self, user: User) -> bool:
        return user.suspended_at is not None

    def _suspension_form(
        self, request: HttpRequest, queryset: QuerySet[User], action: str, title: str
    ) -> tuple[SuspensionForm, TemplateResponse | None]:
        """The reason asked on an intermediate page; answered: the form, else the page."""
        form = SuspensionForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            return form, None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "users": queryset,
            "form": form,
            "action": action,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        }
        return form, TemplateResponse(request, "admin/accounts/user/suspension.html", context)

    @admin.action(
        description="Suspend the selected accounts (their keys refused within a second)",
        permissions=["change"],
    )
    def suspend(self, request: HttpRequest, queryset: QuerySet[User]) -> TemplateResponse | None:
        form, page = self._suspension_form(request, queryset, "suspend", "Suspend accounts")
        if page is not None:
            return page
        now, reason = timezone.now(), form.cleaned_data["reason"]
        for user in queryset.filter(suspended_at__isnull=True):
            # Saved one by one: each save is audited and announced to every gateway process.
            user.suspended_at, user.suspension_reason = now, reason
            user.save(update_fields=["suspended_at", "suspension_reason"])
        self.message_user(request, f"Suspended {queryset.count()} account(s): {reason}")
        return None

    @admin.action(description="Lift the selected accounts' suspension", permissions=["change"])
    def unsuspend(self, request: HttpRequest, queryset: QuerySet[User]) -> TemplateResponse | None:
        form, page = self._suspension_form(request, queryset, "unsuspend", "Lift suspensions")
        if page is not None:
            return page
        for user in queryset.exclude(suspended_at__isnull=True):
            user.suspended_at, user.suspension_reason = None, ""
            user.save(update_fields=["suspended_at", "suspension_reason"])
        reason = form.cleaned_data["reason"]
        self.message_user(
            request, f"Lifted the suspension of {queryset.count()} account(s): {reason}"
        )
        return None

    @admin.display(description="Their records")
    def money_links(self, user: User) -> str:
        """Where staff see what this customer paid and spent (the pages are the billing and
        payments apps'; named here by URL only)."""
        if user.pk is None:
            return ""
        links = []
        try:  # their usage: the analytics page for one customer (monitoring's)
            usage = reverse("admin-analytics")
            links.append(format_html('<a href="{}?user={}">Usage</a>', usage, user.pk))
        except NoReverseMatch:
            pass
        pages = (
            ("Credit and ledger", "admin:billing_ledgerentry_changelist"),
            ("Payments and invoices", "admin:payments_payment_changelist"),
            ("Subscriptions", "admin:payments_subscription_changelist"),
            ("Stripe events", "admin:payments_stripeevent_changelist"),
            ("Trial", "admin:billing_trial_changelist"),
        )
        for label, name in pages:
            try:
                url = reverse(name)
            except NoReverseMatch:
                continue  # an app this process does not run
            links.append(format_html('<a href="{}?user__id__exact={}">{}</a>', url, user.pk, label))
        return format_html_join(" · ", "{}", ((link,) for link in links))


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "slug",
        "name",
        "price_cents",
        "allowance",
        "limit_rpm",
        "limit_tpm",
        "limit_concurrent",
        "priority",
        "public",
    )
    fieldsets = (
        (None, {"fields": ("slug", "name", "description", "priority", "public", "position")}),
        ("Price", {"fields": ("price_cents", "allowance", "stripe_price_id")}),
        ("Account limits (empty: the defaults; 0: none)", {"fields": LIMITS}),
    )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "masked",
        "user",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "user__email", "prefix")
    readonly_fields = ("digest", "prefix", "last4", "created_at", "last_used_at", "revoked_at")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "user",
                    "expires_at",
                    "revoked_at",
                    "created_at",
                    "last_used_at",
                    "prefix",
                    "last4",
                    "digest",
                )
            },
        ),
        ("Rate limits (empty: the defaults)", {"fields": LIMITS}),
        ("Caps (empty: none; reached: 403)", {"fields": CAPS}),
        ("Restrictions (empty: none)", {"fields": RESTRICTIONS}),
        ("Priority when a gateway is at capacity", {"fields": ("priority",)}),
    )
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are created by their owner (the full key is shown only to them)

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset:
            api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} keys.", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "target_repr", "actor", "owner", "ip")
    list_filter = ("action", "target_type")
    search_fields = ("target_repr", "actor__email", "owner__email", "ip")
    date_hierarchy = "created_at"
    readonly_fields = (
        "actor",
        "actor_key",
        "owner",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "before",
        "after",
        "ip",
        "created_at",
    )
