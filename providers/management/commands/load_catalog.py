from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers.catalog_file import (
    BUNDLED_CATALOG,
    DEMO_CATALOG,
    CatalogFileError,
    catalog_file_load,
)


class Command(BaseCommand):
    help = "Load catalog files (the bundled one, GATEWAYZ_CATALOG_FILES, and any given here)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="*", type=Path)
        parser.add_argument(
            "--demo", action="store_true", help="also load the offline demo provider"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        files = [BUNDLED_CATALOG]
        if options["demo"]:
            files.append(DEMO_CATALOG)
        files += [Path(f) for f in settings.GATEWAYZ_CATALOG_FILES] + options["files"]
        for path in files:
            try:
                result = catalog_file_load(path=path)
            except CatalogFileError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"{path.name} v{result.version}: {result.providers} providers, "
                f"{result.models} models, {result.offerings} offerings"
            )
