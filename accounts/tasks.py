from __future__ import annotations

from celery import shared_task

from accounts.services import playground_keys_prune


@shared_task
def prune_playground_keys() -> int:
    """Playground keys a week past their end (accounts.services.playground_keys_prune)."""
    return playground_keys_prune()
