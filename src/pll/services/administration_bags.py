"""The multidose bags of an administration schedule (issue 17): the pharmacy's packing
reports read back into the domain's terms and held against the list as it stands
(:func:`pll.domain.administration.bags.bags`). Runs inside the schedule's own read
transaction; writes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Row

from pll.domain.administration import Schedule
from pll.domain.administration.bags import Bags, PackedLine, PackingReport, bags
from pll.domain.dispensing import moment
from pll.domain.model import Entry, MedicationList
from pll.store import packing as store

#: How many of the patient's newest packing reports a schedule reads: a pharmacy reports
#: once a packing period (one or two weeks), so this reaches months back for a schedule of
#: at most 14 days, repackings included, and bounds the work.
MAX_REPORTS = 20


def schedule_bags(conn: Connection, lst: MedicationList, result: Schedule) -> Bags:
    """Where each planned dose of ``result`` is taken from and how the bags differ from the
    list ``lst``, from the patient's newest packing reports."""
    rows = store.packing_reports(conn, lst.patient_id, MAX_REPORTS)
    reports = [r for r in (_report(conn, row, lst.entries) for row in rows) if r is not None]
    return bags(result, lst.entries, reports)


def _report(conn: Connection, row: Row[Any], entries: Mapping[str, Entry]) -> PackingReport | None:
    """A kept report as the domain reads it. PLL's own reports name the entry, the period
    and the list version packed from; a report imported from SFM names the prescription and
    the first and last dose only, so its entry is the one on that prescription and its period
    runs from the first dose to the last. A line that names no entry on the list, or no
    time, is left out: nothing can be said of its bag."""
    detail = orjson.loads(row.detail) if row.detail else {}
    period = detail.get("period") or {}
    by_rx = {rx: e.id for e in entries.values() for rx in e.prescription_ids}
    found: list[tuple[str, datetime, datetime, str | None]] = []
    for delivery in detail.get("deliveries") or []:
        entry_id = delivery.get("entry") or by_rx.get(delivery.get("prescription") or "")
        first = _at(delivery.get("first_dose") or period.get("start"))
        last = _at(delivery.get("last_dose") or period.get("end"), end_of_day=True)
        if entry_id is None or first is None or last is None:
            continue
        found.append((str(entry_id), first, last, delivery.get("dispense")))
    if not found:
        return None
    start = _at(period.get("start")) or min(f[1] for f in found)
    end = _at(period.get("end"), end_of_day=True) or max(f[2] for f in found)
    packed = (
        store.entries_at(conn, (f[0] for f in found), row.list_version)
        if row.list_version is not None
        else {}
    )
    lines = tuple(
        PackedLine(entry_id, first, last, packed.get(entry_id), dispense)
        for entry_id, first, last, dispense in found
    )
    return PackingReport(row.id, row.sent_at, start, end, lines, row.list_version)


def _at(text: Any, *, end_of_day: bool = False) -> datetime | None:
    """A stored time; a date alone as its last moment when it ends something (as
    ``$packing-report`` reads a date as the period's end)."""
    found = moment(text) if isinstance(text, str) else None
    if found is not None and end_of_day and len(text) <= 10:
        found = found.replace(hour=23, minute=59, second=59)
    return found
