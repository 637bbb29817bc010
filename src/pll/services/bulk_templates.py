"""The rows the service writes for a synthetic patient, made once per plan and stamped per
patient (issue 20: a million patients in ten minutes leaves well under a millisecond of
Python per patient, and the service's write path takes several).

A :class:`Template` is made by running :func:`pll.services.synthetic.write_patient` — the
service's own code — for a stand-in patient inside a savepoint that is rolled back, with
every row it inserts recorded (:func:`pll.store.bulk.recording`). The stand-in has ids,
fødselsnummer and names that are placeholders; each placeholder becomes a slot of a format
string per row, so stamping a patient is one ``str.format`` per row with the patient's own
ids (drawn from the service's id source in the order the write path draws them), number and
names. The one value that is not a copy, the audit records' MACs (they cover the patient's
id), is computed per patient by the audit trail's own function.

Made on the target database, a template sees that database's drug catalogue (decision
support) and time; every patient stamped from it is written at the template's moment.
``tests/integration/test_bulk_import.py`` proves that a stamped patient's rows are, value
for value, the rows the write path writes for the same patient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from pll.auth import audit as seal_math
from pll.auth.access import Access
from pll.auth.audit import AuditKey
from pll.fhir import systems
from pll.services.lists import PLLService
from pll.services.synthetic import Person, Plan, fnrs_from, write_patient
from pll.store import bulk
from pll.store import repository as repo
from pll.store.db import Database
from pll.store.schema import audit_event

#: the stand-in's id number ``k`` (the k-th id the write path draws), shaped like a real id
_ID = "5eed0000-0000-4000-8000-{:012d}"
_FAMILY = "Xqzfamilyzqx"
_GIVEN = "Xqzgivenzqx"
#: the audit record's fields its MAC covers (pll.auth.audit.canonical), in that order
_MAC_FIELDS = (
    "recorded_at",
    "actor",
    "action",
    "resource_type",
    "basis",
    "outcome",
    "resource_id",
    "patient_id",
    "flag",
)


class TemplateError(RuntimeError):
    """The write path did something a template cannot replay."""


@dataclass
class _Row:
    #: the table's name (a template crosses to loading processes; a Table does not)
    table: str
    columns: tuple[str, ...]
    #: per column: a format string over the slots, or a value used as it is
    cells: list[Any]
    #: the whole row as one ``COPY`` text line with slots (PostgreSQL)
    line: str
    #: for an audit record: its MAC's slot, and the MAC fields as format strings or values
    mac: tuple[int, list[Any]] | None = None


@dataclass
class Template:
    """One plan's rows with slots for the patient's ids, fødselsnummer and names."""

    ids: int
    rows: list[_Row] = field(default_factory=lambda: [])

    def stamp(
        self, p: Person, new_id: Callable[[], str], key: AuditKey, postgres: bool
    ) -> list[tuple[_Row, Any, str | None]]:
        """The rows for ``p``: per row, a ``COPY`` line (``postgres``) or column values, and
        for an audit record its MAC (the rest of the row is ``None``)."""
        slots: list[Any] = [new_id() for _ in range(self.ids)]
        slots += [p.fnr, p.family, p.given]
        for row in self.rows:
            if row.mac is not None:
                _, fields = row.mac
                values: list[Any] = [f.format(*slots) if isinstance(f, _Fmt) else f for f in fields]
                slots.append(key.mac(seal_math.canonical(*values)))
        out: list[tuple[_Row, Any, str | None]] = []
        for row in self.rows:
            mac = slots[row.mac[0]] if row.mac is not None else None
            if postgres:
                out.append((row, row.line.format(*slots), mac))
            else:
                cells = {
                    c: v.format(*slots) if isinstance(v, _Fmt) else v
                    for c, v in zip(row.columns, row.cells, strict=True)
                }
                out.append((row, cells, mac))
        return out


class _Fmt(str):
    """A text value with slots, to be filled per patient."""

    __slots__ = ()


class _Ids:
    """The stand-in's id source: placeholder ids, counted."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return _ID.format(self.count - 1)


def stand_in(conn: Connection) -> Person:
    """A stand-in patient whose fødselsnummer nobody on this database has: from 2009 on,
    far past the synthetic patients' numbers (1940 on, 413 a day)."""
    for fnr in fnrs_from(date(2009, 12, 31), 50):
        if repo.find_patient(conn, systems.FNR, fnr) is None:
            return Person(0, fnr, _FAMILY, _GIVEN, 0)
    raise TemplateError("no free stand-in fødselsnummer (2009-12-31)")


def capture(
    db: Database,
    key: AuditKey,
    conn: Connection,
    access: Access,
    plan: Plan,
    now: datetime,
) -> Template:
    """The rows :func:`~pll.services.synthetic.write_patient` writes for ``plan`` at
    ``now``, as a template; written in a savepoint of ``conn`` that is rolled back, so
    nothing stays."""
    ids = _Ids()
    service = PLLService(db, key, clock=lambda: now, ids=ids)
    who = stand_in(conn)
    savepoint = conn.begin_nested()
    try:
        with bulk.recording(conn) as seen:
            write_patient(service, conn, access, who, plan)
    finally:
        savepoint.rollback()
    if seen.others:
        raise TemplateError(
            "the write path ran statements a bulk load cannot replay: " + "; ".join(seen.others)
        )
    return _compile(conn, seen.rows, ids.count, who)


def _compile(conn: Connection, rows: list[bulk.Inserted], ids: int, who: Person) -> Template:
    holders = [_ID.format(k) for k in range(ids)] + [who.fnr, who.family, who.given]
    template = Template(ids)
    macs = len(holders)

    def slotted(text: str, escape: bool) -> str:
        if escape:
            text = text.replace("{", "{{").replace("}", "}}")
        for k, holder in enumerate(holders):
            text = text.replace(holder, f"{{{k}}}")
        return text

    for inserted in rows:
        table = inserted.table
        columns = tuple(inserted.values)
        cells: list[Any] = []
        texts: list[str] = []
        mac: tuple[int, list[Any]] | None = None
        for name in columns:
            value = inserted.values[name]
            column = table.c[name]
            if table is audit_event and name == "mac":
                mac = (macs, [])
                macs += 1
                cells.append(_Fmt(f"{{{mac[0]}}}"))
                texts.append(f"{{{mac[0]}}}")
                continue
            if isinstance(value, str) and any(h in value for h in holders):
                cells.append(_Fmt(slotted(value, True)))
            else:
                cells.append(value)
            texts.append(slotted(bulk.copy_text(value, column, conn), True))
        if mac is not None:
            for name in _MAC_FIELDS:
                value = inserted.values.get(name)
                if isinstance(value, str) and any(h in value for h in holders):
                    mac[1].append(_Fmt(slotted(value, True)))
                else:
                    mac[1].append(value)
        line = "\t".join(texts) + "\n"
        template.rows.append(_Row(table.name, columns, cells, line, mac))
    return template
