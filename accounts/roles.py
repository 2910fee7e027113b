"""Roles, as Django permissions: a user's `role` decides their staff flag and their group, and
the group holds the permissions that the admin and the staff APIs check.

- `user`: a customer. No staff access; the customer API shows their own account only.
- `developer`: staff who watch the service: they see providers, models, prices, health,
  breakers and request logs, and may reset breakers; they change no money, no users, no
  keys, no catalog.
- `support`: staff who help customers: what developers see, and the customers' accounts
  (users, keys, credit, the ledger, the audit log, payments and Stripe's events); they
  change a customer's credit up to GATEWAYZ_SUPPORT_CREDIT_LIMIT at a time
  (billing.staff_credit), more needs an admin.
- `admin`: staff with every permission of Gatewayz's own apps.

Superusers (`createsuperuser`) keep every permission whatever their role.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

GROUPS = {"developer": "developers", "support": "support", "admin": "admins"}
OUR_APPS = (
    "accounts",
    "billing",
    "providers",
    "monitoring",
    "gateway",
    "core",
    "payments",
    "chats",
)
DEVELOPER_VIEWS = ("providers", "monitoring")  # every model of these: view only (and the
# request log, which billing keeps)...
ACCOUNT_DATA = ("view_providerkey",)  # ...but customers' own provider keys: admins only


def _developer_permissions() -> Any:
    return Permission.objects.filter(
        Q(content_type__app_label__in=DEVELOPER_VIEWS, codename__startswith="view_")
        | Q(content_type__app_label="providers", codename="reset_breakers")
        | Q(content_type__app_label="billing", codename="view_requestlog")
    ).exclude(codename__in=ACCOUNT_DATA)


# What support sees of the customers' accounts, beside what developers see, and the one
# change it makes (a ledger entry, bounded: billing.staff_credit).
SUPPORT_PERMISSIONS = {
    "accounts": ("view_user", "view_apikey", "view_plan", "view_auditentry"),
    "billing": ("view_creditaccount", "view_ledgerentry", "add_ledgerentry", "view_trial"),
    # Payments, Stripe's events and disputes, seen; refunds at Stripe are for admins.
    "payments": (
        "view_payment",
        "view_stripeevent",
        "view_dispute",
        "view_creditpack",
        "view_subscription",
    ),
    # Customers' playground chats, read when one asks about an answer.
    "chats": ("view_chatsession", "view_chatmessage"),
}


def _support_permissions() -> Any:
    accounts_data = Q()
    for app, codenames in SUPPORT_PERMISSIONS.items():
        accounts_data |= Q(content_type__app_label=app, codename__in=codenames)
    watching = _developer_permissions().exclude(codename="reset_breakers")
    return Permission.objects.filter(Q(pk__in=watching.values("pk")) | accounts_data)


def groups_ensure() -> dict[str, Group]:
    """The role groups with their permissions (idempotent; permissions exist once migrated)."""
    developers, _ = Group.objects.get_or_create(name=GROUPS["developer"])
    developers.permissions.set(_developer_permissions())
    support, _ = Group.objects.get_or_create(name=GROUPS["support"])
    support.permissions.set(_support_permissions())
    admins, _ = Group.objects.get_or_create(name=GROUPS["admin"])
    admins.permissions.set(Permission.objects.filter(content_type__app_label__in=OUR_APPS))
    return {"developer": developers, "support": support, "admin": admins}


STAFF_ROLES = frozenset(GROUPS)


def staff_flag(user: Any) -> bool:
    return user.role in STAFF_ROLES or bool(user.is_superuser)


def role_apply(user: Any) -> None:
    """Puts the user in their role's group (and only it). Call after the user is saved."""
    groups = groups_ensure()
    ours = list(groups.values())
    user.groups.remove(*ours)
    if user.role in groups:
        user.groups.add(groups[user.role])
