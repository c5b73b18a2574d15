"""Which source a series is read from, and which part of the range from each
(``metrics/tiers/plan.py``): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from perfwatch.metrics.tiers.plan import Coverage, Piece, plan_series

NOW = datetime(2026, 11, 27, 10, 30, 20, tzinfo=UTC)
WATERMARK = datetime(2026, 11, 27, 10, 28, tzinfo=UTC)
DAY = timedelta(days=1)
# A host sampled for a year; raw kept 3 days, the 1-minute tier 30 days.
KEPT = Coverage(
    watermark=WATERMARK,
    oldest_raw=datetime(2026, 11, 24, tzinfo=UTC),
    oldest_minute=datetime(2026, 10, 28, tzinfo=UTC),
    oldest_hour=datetime(2025, 11, 27, tzinfo=UTC),
)
# A host that began sampling an hour ago.
NEW = Coverage(
    watermark=WATERMARK,
    oldest_raw=datetime(2026, 11, 27, 9, 30, 5, tzinfo=UTC),
    oldest_minute=datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
    oldest_hour=datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("span", "source", "step"),
    [
        (timedelta(hours=1), "raw", 5),
        (DAY, "1m", 60),
        (7 * DAY, "1m", 900),
        (30 * DAY, "1h", 3600),
        (365 * DAY, "1h", 21_600),
    ],
)
def test_the_default_point_cap_picks_the_tier_by_range(
    span: timedelta, source: str, step: int
) -> None:
    plan = plan_series(NOW - span, NOW, None, 1500, KEPT)
    assert (plan.source, plan.step_seconds) == (source, step)


def test_a_day_reads_the_minute_tier_then_raw_after_the_watermark() -> None:
    plan = plan_series(NOW - DAY, NOW, None, 1500, KEPT)

    assert plan.pieces == (
        Piece("raw", NOW - DAY, t("2026-11-26 10:31")),  # the partial first minute
        Piece("1m", t("2026-11-26 10:31"), WATERMARK),
        Piece("raw", WATERMARK, NOW),
    )


def test_hours_come_from_the_hour_tier_the_current_hour_from_minutes() -> None:
    plan = plan_series(NOW - 30 * DAY, NOW, None, 1500, KEPT)

    # Raw of 30 days ago is gone: the partial first minute is the 1-minute tier's whole minute.
    assert plan.pieces == (
        Piece("1m", t("2026-10-28 10:30"), t("2026-10-28 11:00")),
        Piece("1h", t("2026-10-28 11:00"), t("2026-11-27 10:00")),
        Piece("1m", t("2026-11-27 10:00"), WATERMARK),
        Piece("raw", WATERMARK, NOW),
    )


def test_past_raw_retention_a_fine_step_is_widened_to_the_minute_tier() -> None:
    start = t("2026-11-20 08:00:30")
    plan = plan_series(start, start + timedelta(hours=1), timedelta(seconds=1), 10_000, KEPT)

    # Raw is gone: the whole first and last minutes, not pieces of them that nothing holds.
    assert plan.step_seconds == 60
    assert plan.pieces == (Piece("1m", t("2026-11-20 08:00"), t("2026-11-20 09:01")),)


def test_past_the_minute_tier_the_hour_tier_gives_whole_hours() -> None:
    start, end = t("2025-12-01 08:20"), t("2025-12-02 08:20")
    plan = plan_series(start, end, timedelta(minutes=1), 10_000, KEPT)

    assert (plan.source, plan.step_seconds) == ("1h", 3600)
    assert plan.pieces == (Piece("1h", t("2025-12-01 08:00"), t("2025-12-02 09:00")),)


def test_a_range_across_raw_retention_is_read_from_the_tiers() -> None:
    start = t("2026-11-23 23:30")
    plan = plan_series(start, start + timedelta(hours=1), None, 1500, KEPT)

    assert (plan.source, plan.step_seconds) == ("1m", 60)
    assert plan.pieces == (Piece("1m", start, start + timedelta(hours=1)),)


def test_a_new_host_is_read_raw_though_its_data_starts_after_the_range() -> None:
    plan = plan_series(NOW - timedelta(hours=2), NOW, None, 1500, NEW)

    assert (plan.source, plan.step_seconds) == ("raw", 5)


def test_before_the_first_run_of_the_job_everything_is_raw() -> None:
    empty = Coverage(None, NEW.oldest_raw, None, None)

    plan = plan_series(NOW - DAY, NOW, None, 1500, empty)

    assert (plan.source, plan.step_seconds, plan.raw_only) == ("raw", 60, True)
    assert plan.pieces == (Piece("raw", NOW - DAY, NOW),)


def test_a_range_after_the_watermark_is_raw() -> None:
    plan = plan_series(WATERMARK, NOW, timedelta(minutes=1), 1500, KEPT)
    assert plan.pieces == (Piece("raw", WATERMARK, NOW),)
