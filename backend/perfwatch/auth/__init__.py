"""Authentication: JWT access and refresh tokens, login throttling, role checks."""
