"""Recomputes the rollups of the last N days from the request log (idempotent): after a
correction of the log, or to fill rollups for a window beat never saw."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from monitoring.rollups import rollup_day_from_hours, rollups_compute


class Command(BaseCommand):
    help = "Recompute the hourly and daily rollups of the last N days from the request log."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=2)

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        day = now - timedelta(days=options["days"])
        written = 0
        while day < now:  # a day at a time: one transaction each, bounded in size
            written += rollups_compute(
                start=day, end=min(day + timedelta(days=1), now), granularity="hour"
            )
            written += rollup_day_from_hours(day)
            day += timedelta(days=1)
        written += rollup_day_from_hours(now)
        self.stdout.write(f"{written} rollup rows written")
