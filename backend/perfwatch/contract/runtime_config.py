"""The runtime configuration catalogue: every known ``config_entries`` key with its default, the
rule its value must follow and its description. The one place these facts live: ``perfwatch
init`` writes the defaults, the API and ``perfwatch config set`` check values with the rules,
the sampler and the API fall back to the defaults, and the API's documentation lists the rules.

Pure data and checks: no database, no I/O. Breaking a rule raises ``ValueError`` with a message
that says what to send; callers turn it into their own error type.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_KEY_LENGTH = 128  # config_entries.key is VARCHAR(128)
INTERVAL_PREFIX = "sampler.interval."


def shown(value: Any, limit: int = 40) -> str:
    """``value`` as JSON, shortened: messages name what was sent without echoing a lot."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class NumberRule:
    """A number between ``minimum`` and ``maximum`` (inclusive); whole numbers only when
    ``integer`` (an integral float such as ``5.0`` is accepted and stored as ``5``)."""

    minimum: int
    maximum: int
    integer: bool
    unit: str = ""

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        return f"{kind} between {self.minimum} and {self.maximum}{self._unit()}"

    def _unit(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def check(self, key: str, value: Any) -> int | float:
        """``value`` normalised, or ``ValueError`` saying what ``key`` must be."""
        # bool is an int in Python, but `true` is not a number of seconds.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} must be {self.describe()}, got {shown(value)}")
        number: int | float = value
        if isinstance(number, float):
            if not math.isfinite(number):
                raise ValueError(f"{key} must be {self.describe()}, got {shown(value)}")
            if self.integer:
                if not number.is_integer():
                    raise ValueError(f"{key} must be a whole number, got {shown(value)}")
                number = int(number)
        if not self.minimum <= number <= self.maximum:
            raise ValueError(
                f"{key} must be between {self.minimum} and {self.maximum}{self._unit()}, "
                f"got {shown(value)}"
            )
        return number

    def clamp(self, value: Any, default: int | float) -> int | float:
        """For readers of a stored value: ``value`` if it follows the rule, else ``default``
        (a row written by hand must not stop the sampler or the API)."""
        try:
            return self.check("", value)
        except ValueError:
            return default


# Every sampler.interval.* key, known or not, follows this rule.
INTERVAL_RULE = NumberRule(1, 3600, integer=False, unit="seconds")


@dataclass(frozen=True, slots=True)
class ConfigKey:
    key: str
    default: int | float
    rule: NumberRule
    description: str


def _interval(name: str, default: int, description: str) -> ConfigKey:
    return ConfigKey(INTERVAL_PREFIX + name, default, INTERVAL_RULE, description)


CATALOGUE: tuple[ConfigKey, ...] = (
    _interval("cpu", 1, "Seconds between CPU samples"),
    _interval("memory", 1, "Seconds between memory samples"),
    _interval("network", 1, "Seconds between network samples"),
    _interval("disk_io", 1, "Seconds between disk I/O samples"),
    _interval("disk_usage", 30, "Seconds between filesystem usage samples"),
    _interval(
        "connections",
        30,
        "Seconds between full TCP/UDP connection-state counts (costly on busy hosts)",
    ),
    _interval("processes", 5, "Seconds between process table samples"),
    _interval("system", 60, "Seconds between system information samples"),
    _interval("sensors", 10, "Seconds between sensor samples"),
    ConfigKey(
        "sampler.processes.top_n",
        10,
        NumberRule(0, 500, integer=True),
        "Processes listed by CPU and by memory",
    ),
    ConfigKey(
        "sampler.batch.max_rows",
        500,
        NumberRule(1, 100_000, integer=True),
        "Snapshots buffered before a database write",
    ),
    ConfigKey(
        "sampler.batch.max_seconds",
        5,
        NumberRule(1, 300, integer=False, unit="seconds"),
        "Longest wait before buffered snapshots are written",
    ),
    ConfigKey(
        "cache.latest_ttl_seconds",
        10,
        NumberRule(1, 86_400, integer=True, unit="seconds"),
        "Lifetime of the latest-snapshot cache entries",
    ),
    ConfigKey(
        "api.max_points",
        1500,
        NumberRule(10, 10_000, integer=True),
        "Most points a downsampled range query returns",
    ),
    ConfigKey(
        "storage.max_bytes",
        0,
        # Up to 1 PB; whole bytes, as Prometheus' retention.size. 0 switches the cap off.
        NumberRule(0, 10**15, integer=True, unit="bytes"),
        "Disk cap of the database: above it the oldest raw days, then the oldest tier "
        "months, are expired until it fits (0: no cap)",
    ),
)

BY_KEY: dict[str, ConfigKey] = {entry.key: entry for entry in CATALOGUE}
KNOWN_KEYS: tuple[str, ...] = tuple(BY_KEY)
DEFAULTS: dict[str, int | float] = {entry.key: entry.default for entry in CATALOGUE}


def default(key: str) -> int | float:
    """The default of a known key (``KeyError`` for any other: a typo in code, not input)."""
    return BY_KEY[key].default


def is_known(key: str) -> bool:
    return key in BY_KEY


def rule_for(key: str) -> NumberRule | None:
    entry = BY_KEY.get(key)
    if entry is not None:
        return entry.rule
    return INTERVAL_RULE if key.startswith(INTERVAL_PREFIX) else None


def read_number(values: Mapping[str, Any], key: str) -> int | float:
    """A known key's value from stored ``values``: the stored one if it follows the rule, else
    the default."""
    entry = BY_KEY[key]
    return entry.rule.clamp(values.get(key, entry.default), entry.default)


def known_keys_text() -> str:
    """The known keys, grouped by prefix: ``sampler.interval.{cpu,memory,…}, api.max_points``."""
    groups: dict[str, list[str]] = {}
    for key in KNOWN_KEYS:
        prefix, _, name = key.rpartition(".")
        groups.setdefault(prefix, []).append(name)
    return ", ".join(
        f"{prefix}.{names[0]}" if len(names) == 1 else f"{prefix}.{{{','.join(names)}}}"
        for prefix, names in groups.items()
    )


def rules_text() -> str:
    """Each rule once, with the keys it applies to: for documentation and error messages."""
    by_rule: dict[NumberRule, list[str]] = {}
    for entry in CATALOGUE:
        by_rule.setdefault(entry.rule, []).append(entry.key)
    parts = []
    for rule, keys in by_rule.items():
        names = (
            f"`{INTERVAL_PREFIX}*`" if rule is INTERVAL_RULE else ", ".join(f"`{k}`" for k in keys)
        )
        parts.append(f"{names}: {rule.describe()}")
    return "; ".join(parts)
