"""The one error of the archive files."""

from __future__ import annotations

from perfwatch.errors import PerfWatchError


class ArchiveVerificationError(PerfWatchError):
    """An archive file or its manifest is missing, damaged or disagrees with the other: its rows
    must not be trusted (nor the raw rows it stands for dropped). The message names the file."""

    code = "archive_invalid"
