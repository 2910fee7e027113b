import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("gatewayz")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect(weak=False)
def _tracing(**kwargs: Any) -> None:
    """In each worker process, after the fork (OpenTelemetry's exporter threads do not
    survive one): tasks traced when an OTLP endpoint is configured (core.tracing)."""
    from core.tracing import tracing_start

    tracing_start("gatewayz-worker", celery=True)
