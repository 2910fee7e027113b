"""The audit log: every state change a person makes (keys, credits, roles, providers, prices,
limits) is written as an `AuditEntry`, with who, what, before and after, from where, and
when; once the change's transaction commits.

Who: the request being served (`AuditMiddleware` keeps it in a context variable; DRF and the
admin set its user once they have authenticated it). A change outside any request (a
management command, a Celery task) is recorded with no actor: the system. Changes are
caught by model signals, so a change made through any path is recorded, and a model that is
audited cannot be changed silently by a new view. What the hot path writes per request
(usage, request logs, a key's last use) is not audited: the ledger and the request log are
their record.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.forms.models import model_to_dict
from django.http import HttpRequest, HttpResponse

from accounts.restrictions import client_address

current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "audit_request", default=None
)
# Never copied into the log, even encrypted (a credential's change shows as its hint's).
SECRET_FIELDS = {"password", "digest", "credential_ciphertext", "ciphertext"}


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)


def _jsonable(value: Any) -> Any:
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]  # many-to-many fields: their objects' names
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)  # decimals exactly, dates, model instances


def snapshot(instance: models.Model) -> dict[str, Any]:
    data = model_to_dict(instance)
    return {k: _jsonable(v) for k, v in data.items() if k not in SECRET_FIELDS}


def _actor() -> tuple[Any, Any, str]:
    request = current_request.get()
    if request is None:
        return None, None, ""
    user = getattr(request, "user", None)
    if user is not None and not user.is_authenticated:
        user = None
    from accounts.models import ApiKey

    auth = getattr(request, "auth", None)
    api_key = auth if isinstance(auth, ApiKey) else None
    meta = request.META
    address = client_address(
        meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), settings.GATEWAYZ_TRUSTED_PROXIES
    )
    return user, api_key, str(address or "")


def audit_record(
    action: str,
    target: models.Model,
    *,
    owner_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Writes an entry once the current transaction commits (at once outside one)."""
    from accounts.models import AuditEntry

    user, api_key, ip = _actor()
    if before is not None and after is not None:
        changed = {k for k in after if before.get(k) != after.get(k)}
        if not changed:
            return
        before = {k: before.get(k) for k in sorted(changed)}
        after = {k: after[k] for k in sorted(changed)}
    entry = AuditEntry(
        actor=user,
        actor_key=api_key,
        owner_id=owner_id,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_repr=str(target)[:200],
        before=before,
        after=after,
        ip=ip,
    )
    transaction.on_commit(entry.save)


# model label -> (how to find the account it concerns, fields whose change is not audited)
Owner = Callable[[Any], int | None]


def _audit(model: type[models.Model], owner: Owner, ignored: frozenset[str]) -> None:
    name = model._meta.model_name

    def remember(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
        fields = kwargs.get("update_fields")
        quiet = fields is not None and set(fields) <= ignored | {"updated_at"}
        if raw or instance.pk is None or quiet:
            instance._audit_before = None
            return
        old = sender.objects.filter(pk=instance.pk).first()
        instance._audit_before = snapshot(old) if old is not None else None

    def saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kw: Any) -> None:
        if raw:
            return
        fields = kw.get("update_fields")
        if fields is not None and set(fields) <= ignored | {"updated_at"}:
            return
        before = None if created else getattr(instance, "_audit_before", None)
        after = {k: v for k, v in snapshot(instance).items() if k not in ignored}
        if before is not None:
            before = {k: v for k, v in before.items() if k not in ignored}
        action = f"{name}.{'create' if created else 'update'}"
        audit_record(action, instance, owner_id=owner(instance), before=before, after=after)

    def deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
        audit_record(
            f"{name}.delete",
            instance,
            owner_id=owner(instance),
            before=snapshot(instance),
            after=None,
        )

    uid = f"audit-{model._meta.label_lower}"
    pre_save.connect(remember, sender=model, dispatch_uid=uid + "-pre", weak=False)
    post_save.connect(saved, sender=model, dispatch_uid=uid + "-post", weak=False)
    post_delete.connect(deleted, sender=model, dispatch_uid=uid + "-delete", weak=False)


def audit_connect() -> None:
    """Signals for every audited model (called once, from AccountsConfig.ready)."""
    from accounts.models import ApiKey, Plan, User
    from providers.models import Alias, Model, Offering, PrefixRoute, Provider, ProviderKey

    _audit(ApiKey, lambda k: k.user_id, frozenset({"last_used_at"}))
    _audit(User, lambda u: u.pk, frozenset({"last_login"}))
    _audit(ProviderKey, lambda k: k.user_id, frozenset())
    _audit(Plan, lambda _: None, frozenset())
    for catalog_model in (Provider, Model, Offering, Alias, PrefixRoute):
        _audit(catalog_model, lambda _: None, frozenset())
    # The credit ledger sits above accounts: billing registers it (audit_ledger).


def audit_ledger(model: Any) -> None:
    """Audits the credits a person grants or adjusts in `model` (the ledger); usage charges,
    holds and releases are the request log's. Called from BillingConfig.ready."""

    def saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kw: Any) -> None:
        if created and not raw and instance.kind not in ("usage", "hold", "release"):
            audit_record(
                f"credit.{instance.kind}",
                instance,
                owner_id=instance.user_id,
                before=None,
                after=snapshot(instance),
            )

    post_save.connect(saved, sender=model, dispatch_uid="audit-ledger", weak=False)
