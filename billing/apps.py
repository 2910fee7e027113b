from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from accounts.audit import audit_ledger
        from accounts.models import User
        from billing.models import LedgerEntry
        from billing.signals import credit_account_for_new_user

        post_save.connect(
            credit_account_for_new_user, sender=User, dispatch_uid="billing-credit-account"
        )
        # Credits granted or adjusted by a person are audited; usage is the request log's.
        audit_ledger(LedgerEntry)

        from accounts.signals import user_signed_up
        from billing.signals import trial_for_new_customer

        user_signed_up.connect(trial_for_new_customer, dispatch_uid="billing-trial")
