"""Time arithmetic of series, in one place: seconds since the Unix epoch, whole minutes, and
the epoch-aligned buckets a range is cut into (their width and how many a range touches).

Buckets are aligned to whole multiples of the step since the epoch, so a chart refreshed a few
seconds later gets the same bucket boundaries; rollups are whole UTC minutes on the same grid.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from perfwatch.contract import runtime_config
from perfwatch.errors import ValidationFailedError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE = 60
HOUR = 3600
# The most buckets a series may have: the upper bound of `api.max_points`.
MAX_POINTS_LIMIT = runtime_config.BY_KEY["api.max_points"].rule.maximum
# Bucket widths in seconds; wider ranges use whole days.
NICE_STEPS = (1, 5, 10, 30, 60, 300, 900, 3600, 21_600, 86_400)


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch, rounded down."""
    delta = moment - EPOCH
    return delta.days * 86_400 + delta.seconds


def epoch_us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def as_epoch_seconds(value: datetime | int) -> int:
    """A bucket start as the database returns it: a time (PostgreSQL) or seconds (SQLite)."""
    return epoch_seconds(value) if isinstance(value, datetime) else int(value)


def bucket_time(value: datetime | int) -> datetime:
    """A bucket start as the database returns it, as an aware UTC time."""
    if not isinstance(value, datetime):
        return EPOCH + timedelta(seconds=int(value))
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def floor_minute(moment: datetime) -> int:
    seconds = epoch_seconds(moment)
    return seconds - seconds % MINUTE


def floor_time(moment: datetime, width: int) -> datetime:
    """The start of the epoch-aligned bucket of ``width`` seconds that holds ``moment``."""
    seconds = epoch_seconds(moment)
    return from_epoch(seconds - seconds % width)


def ceil_time(moment: datetime, width: int) -> datetime:
    """``moment`` if it starts a bucket of ``width`` seconds, else the next bucket's start."""
    floor = floor_time(moment, width)
    return floor if floor == moment else floor + timedelta(seconds=width)


def bucket_count(start: datetime, end: datetime, step_seconds: int) -> int:
    """Epoch-aligned buckets of ``step_seconds`` that ``[start, end)`` touches."""
    step_us = step_seconds * 1_000_000
    first = epoch_us(start) // step_us
    last = (epoch_us(end) - 1) // step_us
    return last - first + 1


def choose_step(start: datetime, end: datetime, step: timedelta | None, max_points: int) -> int:
    """Bucket width in seconds: at least ``step`` and ``span / max_points``, rounded up to a
    nice width (1s 5s 10s 30s 1m 5m 15m 1h 6h 1d, then whole days), widened further if the
    epoch-aligned buckets covering the range would still exceed ``max_points``."""
    if not 1 <= max_points <= MAX_POINTS_LIMIT:
        raise ValidationFailedError(f"max_points must be between 1 and {MAX_POINTS_LIMIT}")
    requested = 1.0 if step is None else step.total_seconds()
    if requested <= 0:
        raise ValidationFailedError("step must be positive, e.g. step=30s")
    span = (end - start).total_seconds()
    width = max(requested, span / max_points, 1.0)
    candidate = next((nice for nice in NICE_STEPS if nice >= width), None)
    if candidate is None:
        candidate = math.ceil(width / 86_400) * 86_400
    while bucket_count(start, end, candidate) > max_points:
        index = NICE_STEPS.index(candidate) if candidate in NICE_STEPS[:-1] else None
        candidate = NICE_STEPS[index + 1] if index is not None else candidate + 86_400
    return candidate
