"""The pages accounts owns: a customer's keys (create, the key shown once, edit, revoke)
and their settings. Usage per key is monitoring's: the pages load it from its fragment
(monitoring.pages.key_usage) with htmx, and link to the dashboard's table without it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.authentication import request_user
from accounts.forms import AccountDeletionForm, KeyForm, ProviderKeyForm
from accounts.models import ApiKey
from accounts.selectors import api_key_get_for_user, api_keys_of
from accounts.services import api_key_create, api_key_revoke, api_key_update, user_anonymise
from providers.byok import (
    provider_key_delete,
    provider_key_get_for_user,
    provider_key_put,
    provider_keys_of,
)


@never_cache  # the page that shows a new key must never be kept by a cache
@login_required
@require_http_methods(["GET", "POST"])
def keys(request: HttpRequest) -> HttpResponse:
    form = KeyForm(data=request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        api_key, raw = api_key_create(user=request_user(request), **form.key_fields())
        created = {"key": api_key, "raw": raw}  # shown on this answer, and never again
        form = KeyForm()
    status = 422 if form.errors else 200
    context = {
        "form": form,
        "keys": api_keys_of(user=request_user(request)).filter(purpose=ApiKey.Purpose.API),
        "created": created,
    }
    return render(request, "accounts/keys.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def key(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = api_key_get_for_user(user=request_user(request), key_id=key_id)
    form = KeyForm.for_key(api_key, data=request.POST or None)
    if request.method == "POST" and form.is_valid() and api_key.revoked_at is None:
        api_key_update(api_key=api_key, **form.key_fields())
        messages.success(request, f"Saved “{api_key.name}”.")
        return redirect("keys")
    status = 422 if form.errors else 200
    context = {"api_key": api_key, "form": form}
    return render(request, "accounts/key.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = api_key_get_for_user(user=request_user(request), key_id=key_id)
    if request.method == "POST":
        api_key_revoke(api_key=api_key)
        messages.success(request, f"Revoked “{api_key.name}”: it is refused from now on.")
        return redirect("keys")
    return render(request, "accounts/key_revoke.html", {"api_key": api_key})


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    """Profile, and the customer's own provider keys (BYOK): add or replace one here."""
    user = request_user(request)
    form = ProviderKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _, created = provider_key_put(
            user_id=user.pk, provider=form.cleaned_data["provider"], raw=form.cleaned_data["key"]
        )
        provider = form.cleaned_data["provider"].name
        messages.success(request, f"{'Added' if created else 'Replaced'} your {provider} key.")
        return redirect("settings")
    context = {"provider_form": form, "provider_keys": provider_keys_of(user_id=user.pk)}
    return render(request, "accounts/settings.html", context, status=422 if form.errors else 200)


@login_required
@require_POST
def provider_key_remove(request: HttpRequest, key_id: int) -> HttpResponse:
    key = provider_key_get_for_user(user_id=request_user(request).pk, key_id=key_id)
    provider_key_delete(key=key)
    messages.success(
        request, "Deleted the key: that provider is billed at Gatewayz's prices again."
    )
    return redirect("settings")


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    form = AccountDeletionForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        user_anonymise(user=user)
        logout(request)
        messages.success(request, "Your account is deleted. Thank you for using Gatewayz.")
        return redirect("home")
    status = 422 if form.errors else 200
    return render(request, "accounts/delete.html", {"form": form}, status=status)
