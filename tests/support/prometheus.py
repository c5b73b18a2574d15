"""Reading the Prometheus text exposition (format 0.0.4) in tests, line by line."""

from __future__ import annotations

import re

_SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? '
    r"(-?[0-9.e+-]+|NaN|[+-]Inf)$"
)


def parse_exposition(text: str) -> dict[str, list[str]]:
    """Check every line of the 0.0.4 text format; samples by metric name."""
    samples: dict[str, list[str]] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge", "untyped"}, line
            assert name not in typed, f"TYPE twice: {line}"
            typed.add(name)
            continue
        assert _SAMPLE.match(line), line
        name = re.split(r"[{ ]", line, maxsplit=1)[0]
        assert name in typed, f"sample before its TYPE: {line}"
        samples.setdefault(name, []).append(line)
    return samples
