"""Which stored data a series is built from: raw snapshots, the 1-minute tier or the 1-hour
tier, and for which part of the range each. Pure: the facts it needs about what is stored
come in a :class:`Coverage` (one query, ``TierRepository.coverage``).

The tier: the finest whose buckets the chosen step is made of, among those that hold the
range's start.

- A step below a minute reads raw snapshots, as long as raw holds the start of the range.
  Raw "does not hold" it when retention has dropped it: the start is older than the oldest
  raw row and a tier holds data from before that row. (A host that began sampling after the
  start has nothing older anywhere: raw is all there is and is used.) Otherwise the step is
  widened to a minute at least.
- A step of whole minutes that is not whole hours (1, 5, 15 min) reads the 1-minute tier if
  it holds the start (same rule, against the 1-hour tier), else the step is widened to an hour.
- A step of whole hours reads the 1-hour tier. Its buckets are exactly what the 1-minute tier
  would give (counts and sums add up, min and max combine), from 60 times fewer rows: 30 days
  are 720 rows instead of 43,200.

The pieces: a tier holds only complete buckets that the tier job has rolled up, the minutes
before its watermark (``maintenance_state`` row ``tiers``) and the hours those fill. The rest
comes from the next finer source, so a chart is seamless and current:

- the partial bucket the range starts in and the one it ends in: from the finer source, or,
  where that is gone too, the tier's whole bucket (which may then reach outside the range);
- the minutes after the watermark: raw snapshots (at most a few minutes when the job runs);
  for the 1-hour tier, the minutes of the current hour before the watermark: the 1-minute tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from perfwatch.metrics.buckets import HOUR, MINUTE, ceil_time, choose_step, floor_time

Tier = Literal["1m", "1h"]
Source = Literal["raw", "1m", "1h"]
RAW: Source = "raw"
MINUTE_TIER: Source = "1m"
HOUR_TIER: Source = "1h"
# Seconds of data behind one stored value of each source ("raw": one snapshot).
RESOLUTION: dict[Source, int] = {RAW: 1, MINUTE_TIER: MINUTE, HOUR_TIER: HOUR}
_FINER: dict[Source, Source] = {MINUTE_TIER: RAW, HOUR_TIER: MINUTE_TIER}
# "Holds nothing": a source empty while a coarser one has data.
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Coverage:
    """What is stored for one host and type: the tier job's watermark (every minute before it
    is in the 1-minute tier; None before the job's first run) and the oldest raw snapshot,
    1-minute and 1-hour bucket (None: none stored)."""

    watermark: datetime | None
    oldest_raw: datetime | None
    oldest_minute: datetime | None
    oldest_hour: datetime | None

    def complete_from(self, source: Source) -> datetime | None:
        """The time from which ``source`` holds all there is; None: all of it, as far back
        as anything is stored. A source lacks what a coarser one holds from before its own
        oldest bucket (retention dropped it)."""
        if source == HOUR_TIER:
            return None
        oldest = self.oldest_raw if source == RAW else self.oldest_minute
        coarser = [(self.oldest_hour, HOUR)]
        if source == RAW:
            coarser.append((self.oldest_minute, MINUTE))
        for held, width in coarser:
            if held is not None and (oldest is None or held < floor_time(oldest, width)):
                return _NEVER if oldest is None else oldest
        return None

    def holds(self, source: Source, moment: datetime) -> bool:
        """Does ``source`` hold everything stored from ``moment`` on?"""
        complete = self.complete_from(source)
        return complete is None or complete <= moment


@dataclass(frozen=True, slots=True)
class Piece:
    """``[start, end)`` of the range, read from ``source``."""

    source: Source
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class SeriesPlan:
    step_seconds: int
    pieces: tuple[Piece, ...]  # oldest first, adjacent (the first may start before the range)

    @property
    def source(self) -> Source:
        """The coarsest source read: every bucket is built from data at least this fine."""
        return max((piece.source for piece in self.pieces), key=RESOLUTION.__getitem__)

    @property
    def raw_only(self) -> bool:
        return len(self.pieces) == 1 and self.pieces[0].source == RAW


def plan_series(
    start: datetime,
    end: datetime,
    step: timedelta | None,
    max_points: int,
    coverage: Coverage,
) -> SeriesPlan:
    """The step (``choose_step``, widened when a finer source lacks the range's start) and
    the pieces of ``[start, end)`` to read."""
    width = choose_step(start, end, step, max_points)
    if width < MINUTE:
        if coverage.holds(RAW, start):
            return SeriesPlan(width, (Piece(RAW, start, end),))
        width = choose_step(start, end, _at_least(step, MINUTE), max_points)
    if width % HOUR:
        if coverage.holds(MINUTE_TIER, start):
            return SeriesPlan(width, tuple(_pieces(MINUTE_TIER, start, end, coverage)))
        width = choose_step(start, end, _at_least(step, HOUR), max_points)
    return SeriesPlan(width, tuple(_pieces(HOUR_TIER, start, end, coverage)))


def _at_least(step: timedelta | None, seconds: int) -> timedelta:
    floor = timedelta(seconds=seconds)
    return floor if step is None or step < floor else step


def _pieces(source: Source, start: datetime, end: datetime, coverage: Coverage) -> list[Piece]:
    if source == RAW or coverage.watermark is None:
        return [Piece(RAW, start, end)]
    width = RESOLUTION[source]
    finer = _FINER[source]
    rolled_up = floor_time(coverage.watermark, width)  # buckets before it are complete
    low, high = ceil_time(start, width), min(floor_time(end, width), rolled_up)
    if start < low and not coverage.holds(finer, start):
        low = floor_time(start, width)
    if high < min(end, rolled_up) and not coverage.holds(finer, high):
        high = min(ceil_time(end, width), rolled_up)
    if low >= high:
        return _pieces(finer, start, end, coverage)
    pieces = _pieces(finer, start, low, coverage) if start < low else []
    pieces.append(Piece(source, low, high))
    if high < end:
        pieces.extend(_pieces(finer, high, end, coverage))
    return pieces
