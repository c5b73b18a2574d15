"""Sensors: temperatures (°C), fan speeds (RPM) and the battery.

psutil's sensor functions are missing on some platforms and can raise on odd hardware; each
part then degrades to an empty mapping (or a null battery). A machine without sensors yields
an empty but valid document.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import psutil

from perfwatch.sampler.collectors._common import Clock, num, percent
from perfwatch.sampler.collectors.base import SCHEMA_VERSION, Collector

ABSENT_RECHECK_SECONDS = 300.0


class SensorsCollector(Collector):
    metric_type: ClassVar[str] = "sensors"
    interval_key: ClassVar[str] = "sampler.interval.sensors"

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        # Part → monotonic time before which it is not looked for again (it was absent).
        self._absent_until: dict[str, float] = {}

    def collect(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "temperatures": self._part("temperatures", temperatures) or {},
            "fans": self._part("fans", fans) or {},
            "battery": self._part("battery", battery),
        }

    def _part(self, name: str, read: Callable[[], Any]) -> Any:
        """Looking for sensors a machine does not have costs a directory scan every call:
        after finding none, look again only every ``ABSENT_RECHECK_SECONDS``."""
        now = self._clock()
        if now < self._absent_until.get(name, float("-inf")):
            return None
        value = read()
        if value:
            self._absent_until.pop(name, None)
        else:
            self._absent_until[name] = now + ABSENT_RECHECK_SECONDS
        return value


def _call(name: str, *args: Any) -> Any:
    function = getattr(psutil, name, None)
    if function is None:
        return None
    try:
        return function(*args)
    except Exception:
        return None


def temperatures() -> dict[str, list[dict[str, Any]]]:
    readings = _call("sensors_temperatures") or {}
    return {
        str(chip): [
            {
                "label": str(entry.label or ""),
                "current_c": num(entry.current, 1),
                "high_c": num(entry.high, 1),
                "critical_c": num(entry.critical, 1),
            }
            for entry in entries
        ]
        for chip, entries in readings.items()
    }


def fans() -> dict[str, list[dict[str, Any]]]:
    readings = _call("sensors_fans") or {}
    result: dict[str, list[dict[str, Any]]] = {}
    for chip, entries in readings.items():
        result[str(chip)] = []
        for entry in entries:
            rpm = num(entry.current)
            result[str(chip)].append(
                {
                    "label": str(entry.label or ""),
                    "rpm": None if rpm is None or rpm < 0 else int(rpm),
                }
            )
    return result


def battery() -> dict[str, Any] | None:
    reading = _call("sensors_battery")
    if reading is None:
        return None
    secs_left = num(reading.secsleft)
    # POWER_TIME_UNLIMITED (-2, plugged in) and POWER_TIME_UNKNOWN (-1) are negative.
    return {
        "percent": percent(reading.percent),
        "secs_left": None if secs_left is None or secs_left < 0 else int(secs_left),
        "power_plugged": (None if reading.power_plugged is None else bool(reading.power_plugged)),
    }
