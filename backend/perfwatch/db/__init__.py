"""Database layer: engine and session lifecycle, declarative base and mixins, partitions."""
