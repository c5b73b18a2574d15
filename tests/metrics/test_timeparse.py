"""``perfwatch.metrics.timeparse``: from/to values (ISO 8601 with an offset, relative, now),
range rules and steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from perfwatch.errors import ValidationFailedError
from perfwatch.metrics.timeparse import (
    DEFAULT_MAX_SPAN,
    parse_duration,
    parse_range,
    parse_time,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("now", NOW),
        (" NOW ", NOW),
        ("-30s", NOW - timedelta(seconds=30)),
        ("-15m", NOW - timedelta(minutes=15)),
        ("-24h", NOW - timedelta(hours=24)),
        ("-7d", NOW - timedelta(days=7)),
        ("-2w", NOW - timedelta(weeks=2)),
        ("now-1h", NOW - timedelta(hours=1)),
        ("-0s", NOW),
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T10:00:00+00:00", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T12:00:00+02:00", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T05:30:00-04:30", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T10:00:00.250Z", datetime(2026, 11, 27, 10, 0, 0, 250_000, tzinfo=UTC)),
        ("2026-11-27 10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
    ],
)
def test_accepted_values(value: str, expected: datetime) -> None:
    parsed = parse_time(value, now=NOW)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("yesterday", "is not a time"),
        ("-24", "is not a time"),
        ("24h", "is not a time"),
        ("+1h", "is not a time"),
        ("-1y", "is not a time"),
        ("-1.5h", "is not a time"),
        ("--1h", "is not a time"),
        ("now+1h", "is not a time"),
        ("2026-13-01T00:00:00Z", "is not a time"),
        ("2026-11-27T25:00:00Z", "is not a time"),
        ("1700000000", "is not a time"),
        ("x" * 200, "too long"),
        ("2026-11-27T10:00:00", "no time zone"),
        ("2026-11-27", "no time zone"),
        ("-99999999d", "too far back"),
        ("-999999999999w", "too far back"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
    ],
)
def test_rejected_values_say_what_to_fix(value: str, message: str) -> None:
    with pytest.raises(ValidationFailedError, match=message):
        parse_time(value, now=NOW, name="from")


def test_error_names_the_parameter() -> None:
    with pytest.raises(ValidationFailedError, match=r"^to='soon'"):
        parse_time("soon", now=NOW, name="to")


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("-24h", "now", (NOW - timedelta(hours=24), NOW)),
        ("-24h", None, (NOW - timedelta(hours=24), NOW)),
        (None, None, (NOW - timedelta(hours=1), NOW)),
        (None, "-1d", (NOW - timedelta(days=1, hours=1), NOW - timedelta(days=1))),
        (
            "2026-11-27T09:00:00Z",
            "-1h",
            (datetime(2026, 11, 27, 9, tzinfo=UTC), NOW - timedelta(hours=1)),
        ),
        ("-400d", "now", (NOW - timedelta(days=400), NOW)),
    ],
)
def test_ranges(start: str | None, end: str | None, expected: tuple[datetime, datetime]) -> None:
    assert parse_range(start, end, now=NOW) == expected


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("now", "now", "must be before"),
        ("-1h", "-2h", "must be before"),
        ("2026-11-27T10:00:00Z", "2026-11-27T12:00:00+02:00", "must be before"),
        ("-401d", "now", "longer than the maximum of 400 days"),
        ("-2h", "garbage", "^to="),
        ("garbage", "now", "^from="),
    ],
)
def test_rejected_ranges(start: str, end: str, message: str) -> None:
    with pytest.raises(ValidationFailedError, match=message):
        parse_range(start, end, now=NOW)


def test_span_cap_is_configurable() -> None:
    assert timedelta(days=400) == DEFAULT_MAX_SPAN
    with pytest.raises(ValidationFailedError, match="maximum of 7 days"):
        parse_range("-8d", "now", now=NOW, max_span=timedelta(days=7))
    assert parse_range("-7d", None, now=NOW, max_span=timedelta(days=7))[0] == NOW - timedelta(
        days=7
    )


def test_default_span_is_configurable() -> None:
    assert parse_range(None, None, now=NOW, default_span=timedelta(minutes=5)) == (
        NOW - timedelta(minutes=5),
        NOW,
    )


def test_now_defaults_to_the_clock() -> None:
    before = datetime.now(UTC)
    parsed = parse_time("now")
    assert before <= parsed <= datetime.now(UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_time("now", now=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1s", 1),
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1d", 86_400),
        ("60", 60),
        (90, 90),
        ("2W", 1_209_600),
    ],
)
def test_durations(value: str | int, seconds: int) -> None:
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "value", ["0s", "0", 0, -5, "-5m", "1x", "", "5 m", "1.5h", True, "99999999d"]
)
def test_rejected_durations(value: str | int) -> None:
    with pytest.raises(ValidationFailedError, match="step"):
        parse_duration(value)
