"""Who may reach what. Roles (user, developer, admin) × every staff API and admin page; and
the IDOR matrix of the customer API: alice owns things, bob is another customer, charlie is
an admin (staff act through the admin, never through another customer's API)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiKey, User
from accounts.services import api_key_create, user_create
from billing.services import credit_grant
from providers.byok import provider_key_put
from providers.models import Model, Offering, Provider, ProviderKey

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def _person(email: str, role: str = "user") -> User:
    user = user_create(email=email, password="long enough password")
    if role != "user":
        user.role = role
        user.save()
    return user


@pytest.fixture
def people() -> dict[str, User | None]:
    return {
        "anonymous": None,
        "user": _person("u@example.com"),
        "developer": _person("d@example.com", "developer"),
        "support": _person("s@example.com", "support"),
        "admin": _person("a@example.com", "admin"),
    }


@pytest.fixture
def offering() -> Offering:
    provider = Provider.objects.create(slug="p1", name="P1", base_url="https://api.example.com")
    model = Model.objects.create(canonical_id="m/one")
    return Offering.objects.create(provider=provider, model=model, upstream_model_id="one")


ROLES = ("anonymous", "user", "developer", "support", "admin")
# path -> expected status per role, in ROLES order (302: sent to the admin's login page)
ADMIN_PAGES = {
    "/admin/": (302, 302, 200, 200, 200),
    "/admin/providers/provider/": (302, 302, 200, 200, 200),
    "/admin/providers/offering/{offering}/change/": (302, 302, 200, 200, 200),
    "/admin/billing/requestlog/": (302, 302, 200, 200, 200),
    "/admin/monitoring/healthsample/": (302, 302, 404, 404, 404),  # not in the admin
    "/admin/accounts/user/": (302, 302, 403, 200, 200),
    "/admin/accounts/apikey/": (302, 302, 403, 200, 200),
    "/admin/providers/providerkey/": (302, 302, 403, 403, 200),  # customers' own keys
    "/admin/accounts/plan/": (302, 302, 403, 200, 200),
    "/admin/accounts/auditentry/": (302, 302, 403, 200, 200),
    "/admin/billing/ledgerentry/": (302, 302, 403, 200, 200),
    "/admin/billing/creditaccount/": (302, 302, 403, 200, 200),
    "/admin/billing/trial/": (302, 302, 403, 200, 200),
    "/admin/payments/payment/": (302, 302, 403, 200, 200),
    "/admin/payments/stripeevent/": (302, 302, 403, 200, 200),
    "/admin/payments/dispute/": (302, 302, 403, 200, 200),
    "/admin/payments/subscription/": (302, 302, 403, 200, 200),
    "/admin/payments/coupon/": (302, 302, 403, 403, 200),
    "/admin/payments/creditpack/": (302, 302, 403, 200, 200),
    "/admin/payments/creditpack/add/": (302, 302, 403, 403, 200),  # prices: admins only
}
STAFF_APIS = {
    ("GET", "/api/monitoring/circuit-breakers"): (401, 403, 200, 200, 200),
    ("POST", "/api/monitoring/circuit-breakers/p1/reset"): (401, 403, 200, 403, 200),
    ("GET", "/api/monitoring/health"): (200, 200, 200, 200, 200),  # a status page's data
}


def _django_client(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("role", ROLES)
def test_admin_pages_by_role(people, offering, role):
    client = _django_client(people[role])
    for path, statuses in ADMIN_PAGES.items():
        response = client.get(path.format(offering=offering.pk))
        assert response.status_code == statuses[ROLES.index(role)], (role, path)


@pytest.mark.parametrize("role", ROLES)
def test_staff_apis_by_role(people, role):
    client = APIClient()
    if people[role] is not None:
        _, raw = api_key_create(user=people[role], name="k")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    for (method, path), statuses in STAFF_APIS.items():
        response = client.generic(method, path)
        assert response.status_code == statuses[ROLES.index(role)], (role, method, path)


def test_a_developer_sees_the_catalog_but_changes_nothing(people, offering):
    client = _django_client(people["developer"])
    response = client.post(
        f"/admin/providers/offering/{offering.pk}/change/",
        {"input_price": "0", "upstream_model_id": "x"},
    )
    assert response.status_code == 403
    offering.refresh_from_db()
    assert offering.upstream_model_id == "one"
    assert client.post("/admin/providers/provider/add/", {"slug": "x"}).status_code == 403


def test_a_role_change_moves_staff_access_with_it(people):
    user = people["user"]
    assert not user.is_staff and not user.has_perm("providers.view_provider")

    user.role = "admin"
    user.save()
    user = User.objects.get(pk=user.pk)  # permissions are cached per instance
    assert user.is_staff and user.has_perm("billing.change_creditaccount")

    user.role = "user"
    user.save()
    user = User.objects.get(pk=user.pk)
    assert not user.is_staff and not user.has_perm("providers.view_provider")
    assert not user.groups.exists()


@pytest.fixture
def alice_bob_charlie():
    alice = _person("alice@example.com")
    credit_grant(user=alice, amount=Decimal("5"), reference="grant:alice")
    bob = _person("bob@example.com")
    credit_grant(user=bob, amount=Decimal("1"), reference="grant:bob")
    charlie = _person("charlie@example.com", "admin")
    key, _ = api_key_create(user=alice, name="alice's key")
    provider = Provider.objects.create(
        slug="alices-provider", name="P", base_url="https://api.example.com"
    )
    provider_key_put(user_id=alice.pk, provider=provider, raw="sk-alice-own-key-of-alice")
    return alice, bob, charlie, key


def _api(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_nobody_else_can_touch_alices_key(alice_bob_charlie):
    alice, bob, charlie, key = alice_bob_charlie
    for intruder in (bob, charlie):
        client = _api(intruder)
        assert (
            client.patch(f"/user/api-keys/{key.pk}", {"name": "mine"}, format="json").status_code
            == 404
        )
        assert client.delete(f"/user/api-keys/{key.pk}").status_code == 404
        assert key.pk not in [k["id"] for k in client.get("/user/api-keys").json()["data"]]
    own = ProviderKey.objects.get(user=alice)
    for intruder in (bob, charlie):
        client = _api(intruder)
        assert client.delete(f"/user/provider-keys/{own.pk}").status_code == 404
        assert client.get("/user/provider-keys").json()["data"] == []
    assert ProviderKey.objects.filter(pk=own.pk).exists()
    key.refresh_from_db()
    assert (key.name, key.revoked_at) == ("alice's key", None)
    assert (
        _api(alice)
        .patch(f"/user/api-keys/{key.pk}", {"name": "renamed"}, format="json")
        .status_code
        == 200
    )


@pytest.mark.parametrize(
    "path",
    [
        "/user/balance",
        "/user/profile",
        "/user/credit-transactions",
        "/user/api-keys/audit-logs",
        "/user/api-keys",
        "/user/provider-keys",
        "/api/stripe/payments",
        "/user/usage",
    ],
)
def test_every_account_endpoint_shows_the_callers_own_account_only(alice_bob_charlie, path):
    alice, bob, charlie, _ = alice_bob_charlie
    seen = {who.email: str(_api(who).get(path).json()) for who in (alice, bob, charlie)}
    assert "alice" not in seen["bob@example.com"] and "alice" not in seen["charlie@example.com"]
    assert "grant:alice" not in seen["bob@example.com"]
    if path in ("/user/profile", "/user/api-keys", "/user/provider-keys"):
        assert "alice" in seen["alice@example.com"]


def test_ids_are_not_an_oracle(alice_bob_charlie):
    """Someone else's key and a key that does not exist look the same."""
    _, bob, _, key = alice_bob_charlie
    missing = ApiKey.objects.order_by("-pk").first().pk + 1000
    client = _api(bob)
    theirs = client.delete(f"/user/api-keys/{key.pk}")
    nothing = client.delete(f"/user/api-keys/{missing}")
    assert (theirs.status_code, theirs.json()) == (nothing.status_code, nothing.json())
    own = ProviderKey.objects.get(user__email="alice@example.com")
    theirs = client.delete(f"/user/provider-keys/{own.pk}")
    nothing = client.delete(f"/user/provider-keys/{own.pk + 1000}")
    assert (theirs.status_code, theirs.json()) == (nothing.status_code, nothing.json())
