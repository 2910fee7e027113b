from django.apps import AppConfig, apps


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from accounts import signals  # noqa: F401  (connects the receivers)
        from accounts.audit import audit_connect
        from accounts.keycache_shared import shared_copies_forget
        from core.models import invalidations_committed

        # weak=False: a module-level function, connected once; kept for the process.
        invalidations_committed.connect(shared_copies_forget, weak=False)

        audit_connect()
        if apps.is_installed("drf_spectacular"):  # the web side's OpenAPI document
            from accounts import openapi  # noqa: F401  (registers the key's scheme)
