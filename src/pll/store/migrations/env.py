"""Alembic environment: runs on the connection PLL hands it (see ``pll.store.db``)."""

from alembic import context

from pll.store.audit_partitions import is_partition
from pll.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - PLL always passes its own connection
    raise RuntimeError("run migrations through `pll db upgrade`")


def _include_name(name: str | None, kind: str, _parents: object) -> bool:
    # the audit trail's monthly partitions are made at run time, not declared (issue 20)
    return not (kind == "table" and is_partition(name))


context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    include_name=_include_name,
)
with context.begin_transaction():
    context.run_migrations()
