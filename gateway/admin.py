"""The provider page, with the gateway's circuit breakers: staff who hold
`providers.reset_breakers` may close every breaker of the providers they select. Registered
here, over providers.admin's page, because the breakers are the gateway's (the providers app
sits below it and knows nothing of them)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from gateway.guards.breaker_rules import CLOSED
from gateway.guards.breaker_staff import breakers_list, breakers_reset
from providers.admin import ProviderAdmin
from providers.models import Provider


class ProviderBreakersAdmin(ProviderAdmin):
    actions = ("reset_circuit_breakers",)

    def get_list_display(self, request: HttpRequest) -> Any:
        return (*super().get_list_display(request), "breakers")

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        # Read once a page (one Redis HGETALL), not once a row.
        self._open: dict[str, list[str]] = {}
        for key, breaker in breakers_list().items():
            if breaker.state != CLOSED:
                self._open.setdefault(key.split("|", 1)[0], []).append(breaker.state)
        return super().changelist_view(request, extra_context)

    @admin.display(description="Circuit breakers")
    def breakers(self, provider: Provider) -> str:
        states = getattr(self, "_open", {}).get(provider.slug, [])
        if not states:
            return "all closed"
        return ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))

    def has_reset_breakers_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("providers.reset_breakers")

    # `permissions` names has_reset_breakers_permission: the admin offers and runs the action
    # only for those it allows.
    @admin.action(
        description="Reset the circuit breakers of the selected providers",
        permissions=("reset_breakers",),
    )
    def reset_circuit_breakers(self, request: HttpRequest, queryset: Any) -> None:
        closed = [key for provider in queryset for key in breakers_reset(provider.slug)]
        self.message_user(
            request,
            f"Closed {len(closed)} circuit breaker(s): {', '.join(closed) or 'none was open'}.",
            messages.SUCCESS,
        )


admin.site.unregister(Provider)
admin.site.register(Provider, ProviderBreakersAdmin)
