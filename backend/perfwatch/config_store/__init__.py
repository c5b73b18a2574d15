"""Runtime configuration entries (sampling intervals, top-N, TTLs…) stored in the database."""
