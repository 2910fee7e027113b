"""Query parameters of the monitoring, usage and discovery endpoints: read from any mapping
(DRF's query_params, a parsed query string), refused with the parameter named."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.utils.dateparse import parse_date, parse_datetime

# The windows the public and staff views offer, in hours.
TIME_RANGES = {"1h": 1, "24h": 24, "7d": 24 * 7, "30d": 24 * 30, "90d": 24 * 90}


class ParamRefused(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name) or default
    if value not in allowed:
        raise ParamRefused(f"'{name}' must be one of: {', '.join(allowed)}.", name)
    return value


def integer(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ParamRefused(f"'{name}' must be an integer from {low} to {high}.", name)
    return value


def decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise ParamRefused(f"'{name}' must be a number, 0 or more.", name)
    return value


def moment(params: Mapping[str, str], name: str, default: datetime) -> datetime:
    return moment_or_none(params, name) or default


def moment_or_none(params: Mapping[str, str], name: str) -> datetime | None:
    """An ISO date (midnight UTC) or time (UTC unless it says otherwise)."""
    raw = params.get(name)
    if not raw:
        return None
    at = parse_datetime(raw)
    if at is None:
        day = parse_date(raw) if len(raw) == 10 else None
        if day is None:
            raise ParamRefused(f"'{name}' must be an ISO date or time, e.g. 2026-12-01.", name)
        at = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)
