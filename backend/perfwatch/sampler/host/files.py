"""Reading the small /proc and /sys files the collectors poll."""

from __future__ import annotations

import os


def read_text(path: str) -> str | None:
    """A small file's text, or None when it cannot be read.

    Plain ``os.open``/``os.read`` (no buffered text wrapper) halves the cost of the small /proc
    and /sys files read every second; newlines are normalised like ``open()`` in text mode.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    chunks: list[bytes] = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text
