"""Metric snapshots: storage and queries of what the sampler collects."""
