from django.apps import AppConfig, apps


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from accounts import signals  # noqa: F401  (connects the receivers)
        from accounts.audit import audit_connect

        audit_connect()
        if apps.is_installed("allauth.account"):  # the web pages' sign-ups
            from accounts import web_signals  # noqa: F401  (connects the receiver)
        if apps.is_installed("drf_spectacular"):  # the web side's OpenAPI document
            from accounts import openapi  # noqa: F401  (registers the key's scheme)
