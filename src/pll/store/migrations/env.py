"""Alembic environment: runs on the connection PLL hands it (see ``pll.store.db``)."""

from alembic import context

from pll.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - PLL always passes its own connection
    raise RuntimeError("run migrations through `pll db upgrade`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
