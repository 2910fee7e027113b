from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The ground floor as a Django app: it holds the cache-invalidation events."""

    name = "core"
