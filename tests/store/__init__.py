"""Storage on SQLite and PostgreSQL, the spool, and Redis."""
