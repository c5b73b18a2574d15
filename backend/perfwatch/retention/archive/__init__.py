"""Archive files of raw snapshots: JSON lines compressed with zstd, one file per host, metric
type and UTC day, each with a manifest (rows, time span, SHA-256). Pure files, no database:
the retention job writes a day here and drops the raw rows only once :func:`write_day` (which
ends by :func:`verify`) has returned; a restore reads the rows back with :func:`read_rows`.

Layout and names: paths.py; one line per snapshot: lines.py; the manifest: manifest.py.
"""

from perfwatch.retention.archive.errors import ArchiveVerificationError
from perfwatch.retention.archive.files import remove_stale_temp_files
from perfwatch.retention.archive.manifest import Manifest
from perfwatch.retention.archive.paths import archive_path
from perfwatch.retention.archive.reader import list_archives, read_rows, verify
from perfwatch.retention.archive.writer import write_day

__all__ = [
    "ArchiveVerificationError",
    "Manifest",
    "archive_path",
    "list_archives",
    "read_rows",
    "remove_stale_temp_files",
    "verify",
    "write_day",
]
