"""What a bulk import (``pll import lists``/``generate``, pll.store.bulk) has done, so a
stopped import continues where it stopped.
"""

from __future__ import annotations

from sqlalchemy import Column, String, Table, Text

from pll.store.schema.base import UTCDateTime, metadata

#: What a bulk import (``pll import lists``/``generate``, issue 20, pll.store.bulk) has done:
#: per job (``generate:seed=1``, ``lists:/abs/folder``) the batches or files loaded, each
#: written in its batch's own transaction so a stopped import continues without duplicates
#: or gaps; and (job ``deferred``) the indexes and foreign keys an import into empty tables
#: dropped, with the SQL that builds each again.
bulk_import = Table(
    "bulk_import",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("item", String(400), primary_key=True),
    Column("detail", Text),
    Column("done_at", UTCDateTime, nullable=False),
)
