"""Parse the ``from`` / ``to`` (and ``step``) values of metric queries.

Accepted time values:

- ISO 8601 with an offset or ``Z``: ``2026-11-27T10:00:00Z``, ``2026-11-27T12:00:00+02:00``,
  fractional seconds allowed. A value **without** an offset (``2026-11-27T10:00:00``, or a bare
  date) is refused: PerfWatch stores UTC and will not guess which zone a naive time meant.
- ``now``, and relative to now: ``-30s``, ``-15m``, ``-24h``, ``-7d``, ``-2w`` (also written
  ``now-24h``). Units: s, m, h, d, w.

Results are timezone-aware UTC datetimes. Every error is an :class:`ValidationFailedError` whose
message says which parameter is wrong and what to send instead.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from perfwatch.errors import ValidationFailedError

# Longest range a query may cover; callers can pass another cap.
DEFAULT_MAX_SPAN = timedelta(days=400)
# Range used when ``from`` is missing.
DEFAULT_SPAN = timedelta(hours=1)

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_RELATIVE = re.compile(r"^(?:now)?-(?P<amount>\d{1,12})(?P<unit>[smhdw])$")
_DURATION = re.compile(r"^(?P<amount>\d{1,12})(?P<unit>[smhdw])?$")
_MAX_INPUT_LENGTH = 64
_EXAMPLES = (
    "an ISO 8601 time with an offset (2026-11-27T10:00:00Z), 'now', or '-15m', '-24h', '-7d'"
)


def parse_time(value: str, *, now: datetime | None = None, name: str = "time") -> datetime:
    """One ``from``/``to`` value as an aware UTC datetime; ``name`` labels error messages."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if not text:
        raise ValidationFailedError(f"{name} is empty; send {_EXAMPLES}")
    if len(text) > _MAX_INPUT_LENGTH:
        raise ValidationFailedError(f"{name} is too long; send {_EXAMPLES}")
    reference = _reference(now)
    if text == "now":
        return reference
    relative = _RELATIVE.match(text)
    if relative is not None:
        seconds = int(relative["amount"]) * _UNIT_SECONDS[relative["unit"]]
        try:
            return reference - timedelta(seconds=seconds)
        except OverflowError:
            raise ValidationFailedError(
                f"{name}={value!r} reaches too far back; use a smaller offset such as '-30d'"
            ) from None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailedError(f"{name}={value!r} is not a time; send {_EXAMPLES}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationFailedError(
            f"{name}={value!r} has no time zone; add 'Z' for UTC or an offset like '+02:00'"
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValidationFailedError(f"{name}={value!r} is out of range") from None


def parse_range(
    start: str | None,
    end: str | None,
    *,
    now: datetime | None = None,
    default_span: timedelta = DEFAULT_SPAN,
    max_span: timedelta = DEFAULT_MAX_SPAN,
) -> tuple[datetime, datetime]:
    """``from``/``to`` as a half-open UTC range ``[start, end)``.

    A missing ``to`` means now; a missing ``from`` means ``default_span`` before ``to``. Both
    are resolved against the same ``now``. ``from`` must be before ``to`` and the range at most
    ``max_span`` long.
    """
    reference = _reference(now)
    end_at = reference if end is None else parse_time(end, now=reference, name="to")
    if start is None:
        try:
            start_at = end_at - default_span
        except OverflowError:
            raise ValidationFailedError(
                "to is too early to have a default from; send from"
            ) from None
    else:
        start_at = parse_time(start, now=reference, name="from")
    if start_at >= end_at:
        raise ValidationFailedError(
            f"from ({start_at.isoformat()}) must be before to ({end_at.isoformat()})"
        )
    if end_at - start_at > max_span:
        raise ValidationFailedError(
            f"the range from {start_at.isoformat()} to {end_at.isoformat()} is longer than "
            f"the maximum of {_describe(max_span)}; narrow it"
        )
    return start_at, end_at


def parse_duration(value: str | int | float, *, name: str = "step") -> timedelta:
    """A step such as ``30s``, ``5m``, ``1h``, ``1d`` or a number of seconds (``60``); > 0."""
    if isinstance(value, bool):
        raise ValidationFailedError(f"{name} must be a duration such as '30s', '5m', '1h' or '1d'")
    if isinstance(value, int | float):
        seconds: float = value
    else:
        match = _DURATION.match(value.strip().lower())
        if match is None:
            raise ValidationFailedError(
                f"{name}={value!r} is not a duration; send e.g. '30s', '5m', '1h', '1d' or seconds"
            )
        seconds = int(match["amount"]) * _UNIT_SECONDS[match["unit"] or "s"]
    if not 0 < seconds <= DEFAULT_MAX_SPAN.total_seconds():
        raise ValidationFailedError(
            f"{name} must be between 1 second and {_describe(DEFAULT_MAX_SPAN)}, got {value!r}"
        )
    return timedelta(seconds=seconds)


def _reference(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _describe(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("days", 86_400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"
