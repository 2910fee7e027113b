"""The pages accounts owns: a customer's keys (create, the key shown once, edit, revoke)
and their settings. Usage per key is monitoring's: the pages load it from its fragment
(monitoring.pages.key_usage) with htmx, and link to the dashboard's table without it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.authentication import request_user
from accounts.forms import KeyForm
from accounts.models import ApiKey
from accounts.selectors import api_key_get_for_user, api_keys_of
from accounts.services import api_key_create, api_key_revoke, api_key_update


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
def settings_page(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/settings.html")
