"""Reusable building blocks shared by every domain package."""
