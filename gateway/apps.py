from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"

    def ready(self) -> None:
        from core.models import invalidations_committed
        from gateway.keycache_shared import shared_copies_forget

        # A committed change of keys or users deletes the shared copies of the keys concerned
        # at once (weak=False: a module-level function, connected once; kept for the process).
        invalidations_committed.connect(shared_copies_forget, weak=False)
