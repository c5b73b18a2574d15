"""What a runtime configuration value may be, as the API and ``perfwatch config set`` check it.

The keys, their defaults and their rules are the catalogue's (``contract/runtime_config.py``).
The API sets known keys only; the CLI also stores other keys (free-form, unchecked) but checks a
known key — and any ``sampler.interval.*`` key — with the same rule as the API.
"""

from __future__ import annotations

from typing import Any

from perfwatch.contract.runtime_config import MAX_KEY_LENGTH, known_keys_text, rule_for, shown
from perfwatch.errors import ValidationFailedError


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
    if rule is None:
        return value
    try:
        return rule.check(key, value)
    except ValueError as exc:
        raise ValidationFailedError(str(exc)) from None


def unknown_key_message(key: str) -> str:
    return f"unknown configuration key {shown(key)}; known keys: {known_keys_text()}"
