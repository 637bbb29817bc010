"""The pseudonymised extract (issue 19): every event of ``[since, until)`` as one row each,
streamed from the database to a CSV or Parquet file.

Memory stays flat however large the extract: events are read a page at a time
(:mod:`pll.store.extract`), the patients of a page are looked up once for that page and
forgotten, and the file is written as it goes (CSV row by row, Parquet one row group per
:data:`ROW_GROUP` rows). The file appears under its name only when it is complete: it is
written beside it and renamed at the end, so a run that fails leaves no half extract an
evaluator could take for a whole one. What a row holds: :mod:`pll.stats.extract`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pll.stats import extract as rows
from pll.stats.extract import COLUMNS, KINDS, NAMES, Person, Pseudonymiser, Row
from pll.stats.spreadsheet import safe_cell
from pll.store import extract as store
from pll.store.db import Database

#: Events read per page (and patients looked up per query).
PAGE = 2000
#: Rows per Parquet row group: large enough to compress well, small enough to hold.
ROW_GROUP = 50_000
FORMATS = ("csv", "parquet")

_BUILD: dict[str, Callable[[Pseudonymiser, Any, Person], Row]] = {
    "list-version": rows.list_version_row,
    "dispense": rows.dispense_row,
    "administration": rows.administration_row,
    "case": rows.case_row,
}


@dataclass(frozen=True)
class Written:
    """What an extract wrote: rows per kind, and the window it covers."""

    counts: dict[str, int]
    since: datetime | None
    until: datetime

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class _Writer(Protocol):
    def write(self, row: Row) -> None: ...

    def close(self) -> None: ...


def events(
    db: Database,
    keys: Pseudonymiser,
    since: datetime | None,
    until: datetime,
    page: int = PAGE,
) -> Iterator[Row]:
    """Every event recorded in ``[since, until)`` as an extract row, kind after kind
    (:data:`~pll.stats.extract.KINDS`), each kind in the order of its table's key."""
    for kind in KINDS:
        for batch in store.pages(db, kind, since, until, page):
            found = store.people(db, (r.patient_id for r in batch if r.patient_id))
            who = {
                pid: rows.person(keys, pid, p.identifier_system, p.identifier_value, p.resource)
                for pid, p in found.items()
            }
            for r in batch:
                if kind == "technical-case":
                    yield rows.technical_case_row(keys, r, who.get(r.patient_id))
                else:
                    yield _BUILD[kind](keys, r, who[r.patient_id])


def write_extract(
    db: Database,
    keys: Pseudonymiser,
    out: Path,
    fmt: str,
    since: datetime | None,
    until: datetime,
    progress: Callable[[str, int], None] | None = None,
) -> Written:
    """Write the extract of ``[since, until)`` to ``out`` as ``fmt`` (csv or parquet);
    ``progress`` is told the kind and the rows written so far, once a page."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if since is not None and since >= until:
        raise ValueError(f"--since {since.isoformat()} is not before {until.isoformat()}")
    partial = out.with_name(f".{out.name}.partial")
    counts = dict.fromkeys(KINDS, 0)
    writer: _Writer = _CsvWriter(partial) if fmt == "csv" else _ParquetWriter(partial)
    try:
        for written, row in enumerate(events(db, keys, since, until), start=1):
            writer.write(row)
            counts[row["kind"]] += 1
            if progress and written % PAGE == 0:
                progress(row["kind"], written)
        writer.close()
        os.replace(partial, out)
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    if progress:
        progress("done", sum(counts.values()))
    return Written(counts, since, until)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return str(value)


class _CsvWriter:
    """RFC 4180 CSV in UTF-8 with a header line; empty fields are absent values; a text
    that a spreadsheet would read as a formula starts with ``'`` (:func:`safe_cell`)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(NAMES)

    def write(self, row: Row) -> None:
        self._csv.writerow([_text(safe_cell(row[name])) for name in NAMES])

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class _ParquetWriter:
    """Parquet (zstd) in row groups of :data:`ROW_GROUP` rows; times are UTC microseconds."""

    def __init__(self, path: Path) -> None:
        import pyarrow as pa  # a large import, needed only for Parquet
        import pyarrow.parquet as pq

        types = {"str": pa.string(), "int": pa.int32(), "bool": pa.bool_()}
        types["time"] = pa.timestamp("us", tz="UTC")
        self._pa = pa
        self._schema = pa.schema([(name, types[kind]) for name, kind in COLUMNS])
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="zstd")
        self._columns: dict[str, list[Any]] = {name: [] for name in NAMES}
        self._size = 0
        self._closed = False

    def write(self, row: Row) -> None:
        for name in NAMES:
            self._columns[name].append(row[name])
        self._size += 1
        if self._size >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._size:
            table = self._pa.Table.from_pydict(self._columns, schema=self._schema)
            self._writer.write_table(table, row_group_size=ROW_GROUP)
            self._columns = {name: [] for name in NAMES}
            self._size = 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._flush()
        finally:
            self._writer.close()
