"""The admin page where staff change a customer's credit for a reason (billing.staff_credit):
reached from each credit account in the admin; for staff who may add ledger entries."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from billing.models import CreditAccount, LedgerEntry
from billing.staff_credit import CreditRefused, StaffOperation, credit_staff_adjust
from core.amounts import amount_text

PERMISSION = "billing.add_ledgerentry"


class AdjustForm(forms.Form):
    operation = forms.ChoiceField(choices=StaffOperation.choices)
    amount = forms.DecimalField(
        min_value=Decimal("0.000000000001"), max_digits=24, decimal_places=12, label="Credits"
    )
    reason = forms.CharField(max_length=200, help_text="Kept in the ledger and the audit log.")
    token = forms.CharField(widget=forms.HiddenInput)  # one change per form shown


def unlimited(user: Any) -> bool:
    """Admins change any amount; support, up to its limit (billing.staff_credit)."""
    return bool(user.is_superuser or getattr(user, "role", "") == "admin")


def adjust_view(
    model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    account = get_object_or_404(CreditAccount.objects.select_related("user"), pk=object_id)
    form = AdjustForm(request.POST or None, initial={"token": uuid.uuid4().hex})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            entry = credit_staff_adjust(
                user_id=account.user_id,
                operation=data["operation"],
                amount=data["amount"],
                reason=data["reason"],
                token=data["token"],
                unlimited=unlimited(request.user),
            )
        except CreditRefused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(
                request,
                f"{StaffOperation(data['operation']).label}: {amount_text(entry.amount)} "
                f"credits for {account.user}; the balance is now "
                f"{amount_text(entry.balance_after)}.",
            )
            return HttpResponseRedirect(reverse("admin:billing_creditaccount_changelist"))
    account.refresh_from_db()
    entries = LedgerEntry.objects.filter(user_id=account.user_id)[:10]
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": f"Change the credit of {account.user}",
        "opts": model_admin.model._meta,
        "account": account,
        "balance": amount_text(account.balance),
        "held": amount_text(account.held),
        "form": form,
        "entries": [(e, amount_text(e.amount), amount_text(e.balance_after)) for e in entries],
    }
    return TemplateResponse(request, "admin/billing/creditaccount/adjust.html", context)
