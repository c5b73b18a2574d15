"""Small helpers shared by the collectors: JSON-safe numbers, timestamps, config values."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from perfwatch.contract import runtime_config

Clock = Callable[[], float]
WallClock = Callable[[], datetime]
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, e.g. ``2024-05-01T12:00:00.123456Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_from_timestamp(timestamp: float) -> str | None:
    try:
        return iso_utc(datetime.fromtimestamp(timestamp, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def num(value: Any, digits: int | None = None) -> float | None:
    """A finite float (optionally rounded) or None: NaN, inf and non-numbers become None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return round(number, digits) if digits is not None else number


def rate(value: float | None) -> float | None:
    """A rate rounded to 3 decimals (None stays None)."""
    return None if value is None else round(value, 3)


def percent(value: float | None, *, cap: bool = True) -> float | None:
    """A percentage rounded to 2 decimals, clamped to 0-100 unless ``cap`` is False."""
    number = num(value)
    if number is None:
        return None
    number = max(0.0, number)
    if cap:
        number = min(100.0, number)
    return round(number, 2)


def non_negative_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number >= 0 else None


def clean_text(value: object) -> str | None:
    """A string fit for JSON storage: psutil decodes names and command lines with
    ``surrogateescape``, and PostgreSQL refuses the lone surrogates that undecodable bytes
    become (and NUL characters). They are replaced, so the whole snapshot is not refused."""
    if value is None:
        return None
    text = str(value)
    if text.isascii() and "\x00" not in text:
        return text
    return text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "\ufffd")


class Periodic(Generic[T]):
    """A costly reading (filesystem usage, the socket-state table) taken at most every
    ``interval`` seconds, the value of the config key ``interval_key``, and repeated in
    between; ``collected_at`` tells its age (None while the reading is None)."""

    def __init__(self, read: Callable[[], T], interval_key: str, wall_clock: WallClock) -> None:
        self._read = read
        self.interval_key = interval_key
        self.interval = float(runtime_config.default(interval_key))
        self._wall_clock = wall_clock
        self._value: T | None = None
        self._taken_at: float | None = None
        self.collected_at: str | None = None

    def configure(self, values: Mapping[str, Any]) -> None:
        self.interval = float(runtime_config.read_number(values, self.interval_key))

    def get(self, now: float) -> T | None:
        if self._taken_at is not None and now - self._taken_at < self.interval:
            return self._value
        self._taken_at = now
        self._value = self._read()
        self.collected_at = None if self._value is None else iso_utc(self._wall_clock())
        return self._value
