from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        import stripe
        from django.conf import settings

        # dj-stripe calls Stripe through the SDK's module-level settings: the same address
        # as payments.stripe_api's own client, so a local double stands in for both.
        stripe.api_base = settings.STRIPE_API_BASE

        # The event handlers register themselves (payments.events.HANDLERS).
        from payments import (  # noqa: F401
            auto_topup,
            charge_events,
            checkout_events,
            subscription_events,
        )
