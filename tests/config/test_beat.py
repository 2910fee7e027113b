"""Celery beat's schedule names only tasks that exist: a misspelt one would never run, and
nothing else would say so."""

from __future__ import annotations

import pytest
from django.conf import settings

from config.celery import app

pytestmark = [pytest.mark.smoke, pytest.mark.django_db]


def test_every_scheduled_task_is_registered():
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled, "no beat schedule"
    missing = sorted(name for name in scheduled if name not in app.tasks)
    assert not missing, missing
    assert {
        "monitoring.tasks.evaluate_incidents",
        "billing.tasks.retain_request_log",
        "monitoring.tasks.prune_rollups",
        "monitoring.tasks.refresh_rollups",
        "accounts.tasks.prune_playground_keys",
    } <= scheduled
