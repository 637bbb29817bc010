"""Database tables, repositories and migrations; only services use this package."""
