"""The contract several domains share: metric types and documents, the snapshot and its one
encoding, cache key and channel names, the runtime configuration catalogue.

A leaf: it imports nothing from perfwatch, so every layer may depend on it (``make lint``
checks the directions; docs/architecture.md, "Dependencies")."""
