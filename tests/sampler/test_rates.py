"""Counter-delta rate maths on synthetic counter sequences."""

from __future__ import annotations

import math

import pytest

from perfwatch.sampler.rates import WRAP_32, WRAP_64, RateTracker, counter_rate


def test_steady_increase_gives_exact_rate() -> None:
    tracker = RateTracker()
    rates = [tracker.rate("eth0", value, now) for now, value in enumerate([0, 100, 200, 450])]
    assert rates == [None, 100.0, 100.0, 250.0]


def test_rate_uses_elapsed_time() -> None:
    assert counter_rate(1_000, 3_000, 0.5) == 4_000.0
    tracker = RateTracker()
    assert tracker.rate("x", 10, 100.0) is None
    assert tracker.rate("x", 40, 102.0) == 15.0


def test_first_sample_has_no_rate() -> None:
    assert counter_rate(None, 5, 1.0) is None
    assert RateTracker().rate("new", 123, 1.0) is None


def test_reset_to_lower_value_gives_none_then_recovers() -> None:
    tracker = RateTracker()
    sequence = [(0.0, 5_000), (1.0, 6_000), (2.0, 10), (3.0, 110), (4.0, 310)]
    rates = [tracker.rate("if", value, now) for now, value in sequence]
    assert rates == [None, 1_000.0, None, 100.0, 200.0]


def test_reset_never_negative_even_with_wrap_width() -> None:
    # Dropping from a low value to a lower one is a reset: the "wrapped" delta would be ~2**32.
    assert counter_rate(1_000, 10, 1.0, wrap_at=WRAP_32) is None
    assert counter_rate(10**12, 5, 1.0, wrap_at=WRAP_64) is None


@pytest.mark.parametrize("wrap_at", [WRAP_32, WRAP_64])
def test_wrap_gives_correct_small_rate(wrap_at: int) -> None:
    previous = wrap_at - 300
    assert counter_rate(previous, 200, 2.0, wrap_at=wrap_at) == 250.0
    tracker = RateTracker(wrap_at=wrap_at)
    assert tracker.rate("c", previous, 0.0) is None
    assert tracker.rate("c", 200, 1.0) == 500.0
    assert tracker.rate("c", 700, 2.0) == 500.0


def test_wrap_is_not_applied_without_width() -> None:
    assert counter_rate(WRAP_32 - 300, 200, 1.0) is None


def test_values_beyond_wrap_width_are_not_wraps() -> None:
    # A 64-bit counter read with a 32-bit width: not a plausible wrap.
    assert counter_rate(2**40, 5, 1.0, wrap_at=WRAP_32) is None


def test_absurd_jump_beyond_cap_is_none() -> None:
    assert counter_rate(0, 10**15, 1.0, max_rate=1e12) is None
    assert counter_rate(0, 10**11, 1.0, max_rate=1e12) == 1e11
    tracker = RateTracker(max_rate=1e12)
    assert tracker.rate("nic", 0, 0.0) is None
    assert tracker.rate("nic", 10**15, 1.0) is None
    # The absurd reading becomes the baseline: the next sane delta is a sane rate.
    assert tracker.rate("nic", 10**15 + 500, 2.0) == 500.0
    # A per-call cap overrides the tracker's.
    assert tracker.rate("nic", 10**15 + 1_500, 3.0, max_rate=100) is None


@pytest.mark.parametrize("elapsed", [0.0, -1.0, math.nan])
def test_zero_or_negative_elapsed_is_none(elapsed: float) -> None:
    assert counter_rate(0, 100, elapsed) is None


def test_tracker_time_not_advancing_keeps_baseline() -> None:
    tracker = RateTracker()
    assert tracker.rate("k", 0, 10.0) is None
    assert tracker.rate("k", 50, 10.0) is None  # same instant
    assert tracker.rate("k", 100, 9.0) is None  # clock went backwards
    assert tracker.rate("k", 200, 12.0) == 100.0  # against the reading at t=10


def test_non_finite_counters_are_none() -> None:
    assert counter_rate(math.inf, 1, 1.0) is None
    assert counter_rate(0, math.nan, 1.0) is None


def test_vanished_keys_are_pruned_by_update() -> None:
    tracker = RateTracker()
    assert tracker.update({"a": 0, "b": 0}, 0.0) == {"a": None, "b": None}
    assert tracker.update({"a": 10, "b": 20}, 1.0) == {"a": 10.0, "b": 20.0}
    assert tracker.update({"a": 30}, 2.0) == {"a": 20.0}
    assert "b" not in tracker
    assert len(tracker) == 1
    # "b" comes back: a fresh start, no rate against its old reading.
    assert tracker.update({"a": 40, "b": 1_000}, 3.0) == {"a": 10.0, "b": None}


def test_retain_entities_prunes_tuple_keys() -> None:
    tracker = RateTracker()
    for name in ("eth0", "veth1"):
        for field in ("bytes_sent", "bytes_recv"):
            tracker.rate((name, field), 0, 0.0)
    assert len(tracker) == 4
    tracker.retain_entities(["eth0"])
    assert len(tracker) == 2
    assert ("eth0", "bytes_sent") in tracker
    assert ("veth1", "bytes_sent") not in tracker


def test_state_stays_bounded_with_churning_entities() -> None:
    tracker = RateTracker()
    for cycle in range(1_000):
        tracker.update({f"veth{cycle}": cycle, "eth0": cycle * 10}, float(cycle))
    assert len(tracker) == 2
