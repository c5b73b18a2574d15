"""Archive and retention policies for metric history."""
