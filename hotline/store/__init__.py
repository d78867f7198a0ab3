"""Tickets in a SQL database (SQLAlchemy 2 async): SQLite by default, PostgreSQL by URL."""
