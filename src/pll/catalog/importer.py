"""Importing a FEST extract: load it as a new catalogue version, check it, switch to it.

The extract is read as a stream (:mod:`pll.catalog.fest`) and written in batches, each in
its own short transaction, into a version marked ``loading``. References are resolved and
checked in the database once everything is in (a brand's strengths to substances, a
package's substances through its brand). Only then does one short transaction make the new
version active; the old one is removed by the next import. Anything wrong — a broken file, a
duplicate id, a reference to a missing substance — removes the half-loaded version and leaves
the active catalogue as it was (FEST is published every 14 days; a bad download must not
take decision support down).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import orjson
from sqlalchemy import Table, and_, func, select
from sqlalchemy.exc import IntegrityError

from pll.catalog import fest
from pll.store import catalog as store
from pll.store.db import Database
from pll.store.schema import (
    fest_drug,
    fest_interaction,
    fest_interaction_atc,
    fest_name,
    fest_not_assessed,
    fest_ref,
    fest_strength,
    fest_substance,
)

BATCH = 2000


@dataclass(frozen=True)
class Imported:
    version: int
    replaced: int | None
    extracted_at: datetime | None
    counts: dict[str, int]
    #: packages naming a brand the extract does not have (kept; the guide allows it)
    dangling_brands: int


class _Batches:
    """Rows waiting to be written, per table; flushed in their own transactions."""

    def __init__(self, db: Database, version: int) -> None:
        self.db = db
        self.version = version
        self.rows: dict[Table, list[dict[str, Any]]] = {}
        self.pending = 0

    def add(self, table: Table, **values: Any) -> None:
        self.rows.setdefault(table, []).append({"catalog": self.version, **values})
        self.pending += 1
        if self.pending >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        try:
            with self.db.write() as conn:
                for table, rows in self.rows.items():
                    store.add(conn, table, rows)
        except IntegrityError:
            raise fest.FestError(self._duplicate()) from None
        self.rows = {}
        self.pending = 0

    def _duplicate(self) -> str:
        """Name the id that appears twice (in this batch or in an earlier one)."""
        with self.db.read() as conn:
            for table, rows in self.rows.items():
                keys = [c.name for c in table.primary_key.columns if c.name != "catalog"]
                seen: set[tuple[Any, ...]] = set()
                for row in rows:
                    key = tuple(row[k] for k in keys)
                    where = and_(
                        table.c.catalog == self.version,
                        *(table.c[k] == v for k, v in zip(keys, key, strict=True)),
                    )
                    if key in seen or conn.execute(select(func.count()).where(where)).scalar():
                        return (
                            f"The extract lists {table.name.removeprefix('fest_')} "
                            f"{' / '.join(map(str, key))} twice; ids must be unique."
                        )
                    seen.add(key)
        return "The extract lists an id twice; ids must be unique."


def import_fest(
    db: Database,
    stream: IO[bytes],
    source: str,
    *,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> Imported:
    """Load a FEST extract and make it the catalogue in use (``pll fest import``)."""
    try:
        with db.write() as conn:
            version = store.begin(conn, source, now)
    except IntegrityError:
        version = None  # another import began at the same moment
    if version is None:
        raise fest.FestError(
            "Another FEST import is in progress; try again when it has finished (an import "
            f"that died is cleared after {store.STALE})."
        )
    try:
        header, items = fest.read(stream, now.date(), progress)
        batches = _Batches(db, version)
        for item in items:
            _add(batches, item)
        batches.flush()
        with db.write() as conn:
            if not header.counts.get("KatLegemiddelpakning") or not header.counts.get(
                "KatInteraksjon"
            ):
                raise fest.FestError(
                    "The extract has no packages or no interactions: it is not a full FEST "
                    "extract (incremental extracts are not imported). The catalogue in use "
                    "was kept."
                )
            problems, dangling = store.resolve(conn, version)
            if problems:
                raise fest.FestError(
                    f"The extract does not hold together: {'; '.join(problems)}. "
                    "The catalogue in use was kept."
                )
            counts = dict(header.counts)
            replaced = store.activate(
                conn, version, header.extracted_at, orjson.dumps(counts).decode()
            )
    except BaseException:
        with db.write() as conn:
            store.drop(conn, version)
        raise
    with db.write() as conn:
        # The replaced version stays (retired) until the next import: a check that read the
        # version number just before the switch still finds its rows.
        store.analyze(conn)
    return Imported(version, replaced, header.extracted_at, counts, dangling)


def _add(batches: _Batches, item: fest.Item) -> None:
    if isinstance(item, fest.Drug):
        batches.add(
            fest_drug,
            id=item.id,
            kind=item.kind,
            code=item.code,
            name=item.name,
            atc=item.atc,
            rx_group=item.rx_group,
            exchange_group=item.exchange_group,
            brand=item.brand,
            form=item.form,
            active=item.active,
            validity=item.validity,
            pack=item.pack,
            pack_amount=item.pack_amount,
            pack_unit=item.pack_unit,
        )
        for ref in item.refs:
            batches.add(fest_ref, drug=item.id, ref=ref)
        for token in fest.tokens(item.name):
            batches.add(fest_name, token=token, drug=item.id)
    elif isinstance(item, fest.Substance):
        batches.add(fest_substance, id=item.id, name=item.name, atc=item.atc)
        # a substance's words find the drugs that hold it (zopiklon → Imovane)
        for token in fest.tokens(item.name):
            batches.add(fest_name, token=token, drug=item.id)
    elif isinstance(item, fest.Strength):
        batches.add(fest_strength, id=item.id, substance=item.substance, label=item.label)
    elif isinstance(item, fest.Interaction):
        batches.add(
            fest_interaction,
            id=item.id,
            relevance=item.relevance,
            consequence=item.consequence,
            mechanism=item.mechanism,
            handling=item.handling,
        )
        for side, group in enumerate(item.groups, start=1):
            for atc, name in dict(group).items():
                batches.add(
                    fest_interaction_atc, interaction=item.id, side=side, atc=atc, name=name
                )
    else:
        batches.add(fest_not_assessed, atc=item.atc)


def active_version(db: Database) -> int | None:
    with db.read() as conn:
        return store.active(conn)
