"""Resolution tiers: per-bucket statistics of every numeric field, for 1-minute and 1-hour rows."""
