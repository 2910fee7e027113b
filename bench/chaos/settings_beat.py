"""Celery beat's settings in the soak: the production settings, with the two money tasks
(expired holds given back, balance changes mirrored into Redis) every 5 s instead of every
minute, so that the drain after the load waits for the hold TTL, not for beat's next tick.
Everything else (and every other process of the soak) runs on the production settings."""

from config.settings import *  # noqa: F403
from config.settings import CELERY_BEAT_SCHEDULE as _PRODUCTION

SOAK_INTERVAL_SECONDS = 5.0
_FASTER = ("release-expired-holds", "mirror-pending-balance-changes")

CELERY_BEAT_SCHEDULE = {
    name: {**entry, "schedule": SOAK_INTERVAL_SECONDS} if name in _FASTER else entry
    for name, entry in _PRODUCTION.items()
}
