"""What a runtime configuration value may be: one rule per known key, shared by the API and the
``perfwatch config set`` command.

The *known keys* are the ones ``perfwatch init`` writes (``DEFAULT_CONFIG``); each has a rule.
The API sets known keys only. The CLI also stores other keys (free-form, unchecked) but checks a
known key — and any ``sampler.interval.*`` key — with the same rule as the API.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from perfwatch.bootstrap.defaults import DEFAULT_CONFIG
from perfwatch.errors import ValidationFailedError

MAX_KEY_LENGTH = 128  # config_entries.key is VARCHAR(128)
INTERVAL_PREFIX = "sampler.interval."


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
        unit = f" {self.unit}" if self.unit else ""
        return f"{kind} between {self.minimum} and {self.maximum}{unit}"

    def check(self, key: str, value: Any) -> int | float:
        # bool is an int in Python, but `true` is not a number of seconds.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationFailedError(f"{key} must be {self.describe()}, got {shown(value)}")
        number: int | float = value
        if isinstance(number, float):
            if not math.isfinite(number):
                raise ValidationFailedError(f"{key} must be {self.describe()}, got {shown(value)}")
            if self.integer:
                if not number.is_integer():
                    raise ValidationFailedError(f"{key} must be a whole number, got {shown(value)}")
                number = int(number)
        if not self.minimum <= number <= self.maximum:
            unit = f" {self.unit}" if self.unit else ""
            raise ValidationFailedError(
                f"{key} must be between {self.minimum} and {self.maximum}{unit}, got {shown(value)}"
            )
        return number


INTERVAL_RULE = NumberRule(1, 3600, integer=False, unit="seconds")

RULES: dict[str, NumberRule] = {
    "sampler.processes.top_n": NumberRule(0, 500, integer=True),
    "sampler.batch.max_rows": NumberRule(1, 100_000, integer=True),
    "sampler.batch.max_seconds": NumberRule(1, 300, integer=False, unit="seconds"),
    "cache.latest_ttl_seconds": NumberRule(1, 86_400, integer=True, unit="seconds"),
    "api.max_points": NumberRule(10, 10_000, integer=True),
}

KNOWN_KEYS: tuple[str, ...] = tuple(default.key for default in DEFAULT_CONFIG)
DEFAULTS: dict[str, Any] = {default.key: default.value for default in DEFAULT_CONFIG}
DESCRIPTIONS: dict[str, str] = {default.key: default.description for default in DEFAULT_CONFIG}


def shown(value: Any, limit: int = 40) -> str:
    """``value`` as JSON, shortened: error messages name what was sent without echoing a lot."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rule_for(key: str) -> NumberRule | None:
    if key.startswith(INTERVAL_PREFIX):
        return INTERVAL_RULE
    return RULES.get(key)


def is_known(key: str) -> bool:
    return key in DEFAULTS


def known_keys_text() -> str:
    """The known keys, grouped by prefix: ``sampler.interval.{cpu,memory,…}, api.max_points``."""
    groups: dict[str, list[str]] = {}
    for key in KNOWN_KEYS:
        prefix, _, name = key.rpartition(".")
        groups.setdefault(prefix, []).append(name)
    parts = []
    for prefix, names in groups.items():
        parts.append(
            f"{prefix}.{names[0]}" if len(names) == 1 else f"{prefix}.{{{','.join(names)}}}"
        )
    return ", ".join(parts)


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or key != key.strip():
        raise ValidationFailedError(
            f"a configuration key is 1 to {MAX_KEY_LENGTH} characters without surrounding spaces"
        )
    return key


def validate_value(key: str, value: Any) -> Any:
    """``value`` checked (and normalised) by ``key``'s rule; unchanged for keys without one.
    Raises ``ValidationFailedError`` with a message that says what to fix."""
    check_key(key)
    rule = rule_for(key)
    return value if rule is None else rule.check(key, value)


def unknown_key_message(key: str) -> str:
    return f"unknown configuration key {shown(key)}; known keys: {known_keys_text()}"
