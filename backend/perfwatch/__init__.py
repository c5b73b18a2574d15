"""PerfWatch: a self-hosted system-performance monitor with per-second history."""

__version__ = "0.1.0"
