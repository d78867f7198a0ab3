"""Alembic environment: migrations run on a connection handed in by hotline.store.engine."""

from __future__ import annotations

from alembic import context

from hotline.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `hotline db upgrade`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
