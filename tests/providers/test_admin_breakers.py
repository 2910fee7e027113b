"""The admin's "reset the circuit breakers" action: offered to, and run for, staff who hold
`providers.reset_breakers` only; staff who may merely view providers neither see it nor can
post it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import User
from accounts.services import user_create
from gateway.guards.breaker_rules import OPEN, Breaker
from gateway.guards.breaker_staff import breakers_list
from providers.models import Provider
from tests.support.staff import breaker_put

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

CHANGELIST = "/admin/providers/provider/"


@pytest.fixture
def open_breaker() -> Iterator[tuple[Provider, str]]:
    """A provider with an open breaker, where the staff side reads breakers: Redis, or
    without it (the embedded default) this process's own board."""
    slug = f"reset-{uuid.uuid4().hex[:8]}"
    provider = Provider.objects.create(slug=slug, name=slug, base_url="https://api.example.com")
    key = f"{slug}|m/one"
    breaker_put(key, Breaker(state=OPEN, consecutive=5, opened_at=time.time(), cooldown=15.0))
    yield provider, key
    breaker_put(key, None)


def _staff(*codenames: str) -> Client:
    """A staff member holding exactly these providers permissions."""
    user: User = user_create(email=f"{uuid.uuid4().hex[:8]}@example.com", password="long pass!")
    user.role = "developer"  # staff
    user.save()
    user.groups.clear()  # not the developers' permissions: only those given here
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="providers", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


def _reset(client: Client, provider: Provider) -> None:
    client.post(
        CHANGELIST,
        {"action": "reset_circuit_breakers", "_selected_action": [provider.pk], "index": 0},
    )


def test_staff_without_the_permission_cannot_reset_breakers(open_breaker):
    provider, key = open_breaker
    viewer = _staff("view_provider")

    page = viewer.get(CHANGELIST)
    _reset(viewer, provider)

    assert page.status_code == 200  # they may see the providers...
    assert b"reset_circuit_breakers" not in page.content  # ...but are not offered the action
    assert breakers_list()[key].state == OPEN  # and posting it anyway does nothing


def test_staff_with_the_permission_reset_breakers(open_breaker):
    provider, key = open_breaker
    operator = _staff("view_provider", "reset_breakers")

    page = operator.get(CHANGELIST)
    _reset(operator, provider)

    assert b"reset_circuit_breakers" in page.content
    assert key not in breakers_list()


def test_the_providers_list_shows_their_breakers_state(open_breaker):
    provider, _ = open_breaker
    page = _staff("view_provider").get(CHANGELIST, {"q": provider.slug})
    assert page.status_code == 200
    assert b"1 open" in page.content  # and every other provider's "all closed"


def test_a_price_edit_is_kept_with_its_before_and_after(django_capture_on_commit_callbacks):
    """Catalog edits in the admin are audited; the offering's page links to its history."""
    from decimal import Decimal

    from accounts.models import AuditEntry
    from providers.models import Model, Offering

    provider = Provider.objects.create(
        slug=f"h{uuid.uuid4().hex[:6]}", name="H", base_url="https://api.example.com"
    )
    model = Model.objects.create(canonical_id=f"h/{uuid.uuid4().hex[:6]}", name="H model")
    offering = Offering.objects.create(
        model=model,
        provider=provider,
        upstream_model_id="h-1",
        input_price=Decimal(1),
        output_price=Decimal(2),
    )
    staff = user_create(email=f"{uuid.uuid4().hex[:8]}@example.com", password="long pass!")
    staff.is_superuser = True
    staff.role = "admin"
    staff.save()
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/providers/offering/{offering.pk}/change/")
    form = {k: v for k, v in page.context["adminform"].form.initial.items() if v is not None}
    form.update({"model": model.pk, "provider": provider.pk, "input_price": "1.5"})
    with django_capture_on_commit_callbacks(execute=True):  # the audit is written on commit
        saved = client.post(f"/admin/providers/offering/{offering.pk}/change/", form)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    entry = AuditEntry.objects.filter(
        target_type="providers.offering", target_id=str(offering.pk)
    ).latest("created_at")
    assert entry.actor_id == staff.pk
    assert Decimal(entry.before["input_price"]) == 1 and Decimal(
        entry.after["input_price"]
    ) == Decimal("1.5")
    link = f"target_type=providers.offering&amp;target_id={offering.pk}"
    assert link in client.get(f"/admin/providers/offering/{offering.pk}/change/").content.decode()
    history = client.get(
        "/admin/accounts/auditentry/",
        {"target_type": "providers.offering", "target_id": offering.pk},
    )
    assert history.status_code == 200 and len(history.context["cl"].result_list) >= 1
