"""One archived snapshot as one line of JSON, and back, without ever re-encoding the document:

    {"host":<str>,"metric_type":<str>,"captured_at":"YYYY-MM-DDTHH:MM:SS.ffffffZ","data":<document>}

The document is the stored JSON text byte for byte (PostgreSQL's jsonb text keeps ``1.10``, a big
integer keeps every digit), so a restore inserts exactly what was dropped. Host and type are
encoded by ``json.dumps`` (ASCII, every ``"`` escaped), which is why the first ``,"data":`` of a
line is where the document starts: inside a JSON string a quote is always preceded by a backslash.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from perfwatch.contract.metrics import EncodedSnapshot

DATA_MARK = b',"data":'
_HEAD_KEYS = ["host", "metric_type", "captured_at"]


def format_time(moment: datetime) -> str:
    """``moment`` in UTC with microseconds and a ``Z``: the one spelling of archive times."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: archives hold timezone-aware UTC times")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time`; any other spelling is refused."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or format_time(moment) != text:
        raise ValueError(f"time {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    return moment.astimezone(UTC)


def line_head(host: str, metric_type: str) -> bytes:
    """What every line of one archive file starts with, up to the captured_at value."""
    return (
        f'{{"host":{json.dumps(host)},"metric_type":{json.dumps(metric_type)},"captured_at":"'
    ).encode()


def encode_line(row: EncodedSnapshot, head: bytes | None = None) -> bytes:
    """The line of ``row``, newline included; ``head`` is :func:`line_head` of the row's host and
    type when the caller has it at hand (one file writes thousands of lines with the same head)."""
    if "\n" in row.document or "\r" in row.document:
        # Whitespace between JSON tokens (strings cannot hold raw line breaks): it would split the
        # line, and removing it would change the stored text.
        raise ValueError(f"the document of {row.host} {row.metric_type} has a line break")
    if head is None:
        head = line_head(row.host, row.metric_type)
    time = format_time(row.captured_at)
    return b"".join((head, time.encode(), b'"', DATA_MARK, row.document.encode(), b"}\n"))


def decode_line(line: bytes) -> EncodedSnapshot:
    """The snapshot of ``line`` (without its newline). Checks the line's frame, not the document:
    :func:`count_values` parses that. Raises ``ValueError`` on any other shape."""
    cut = line.find(DATA_MARK)
    if cut < 0 or not line.endswith(b"}"):
        raise ValueError("not an archive line")
    head = json.loads(line[:cut] + b"}")
    if not isinstance(head, dict) or list(head) != _HEAD_KEYS:
        raise ValueError("the line does not start with host, metric_type, captured_at")
    host, metric_type, captured_at = (head[key] for key in _HEAD_KEYS)
    if not all(isinstance(value, str) for value in (host, metric_type, captured_at)):
        raise ValueError("host, metric_type and captured_at must be strings")
    document = line[cut + len(DATA_MARK) : -1].decode()
    return EncodedSnapshot(host, parse_time(captured_at), metric_type, document)


def count_values(document: str) -> int:
    """How many numbers ``document`` holds (booleans are not numbers); raises ``ValueError`` when
    it is not JSON. The count is the denominator of the archive's bytes per value."""
    count = 0

    def number(text: str) -> int:
        nonlocal count
        count += 1
        return 0

    # NaN and Infinity are Python's JSON extension, which the project's encoder can write.
    json.loads(document, parse_int=number, parse_float=number, parse_constant=number)
    return count
