"""The HTTP API under /api/v1: error shape, middleware, shared dependencies, the router."""
