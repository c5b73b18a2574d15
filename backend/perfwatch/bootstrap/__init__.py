"""First-run initialisation (admin, default config, default policies) and demo data."""
