from django.apps import AppConfig


class ChatsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chats"
    verbose_name = "Chats"

    def ready(self) -> None:
        from accounts.signals import user_anonymised
        from chats.signals import chats_of_anonymised

        user_anonymised.connect(chats_of_anonymised, dispatch_uid="chats-anonymised")
