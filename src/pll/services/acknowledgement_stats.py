"""The rollout figure of issue 17: how long care units take to acknowledge list changes
(docs/administration.md "Acknowledging changes", docs/statistics.md).

Per care unit: the changes acknowledged in a span of days (each change an acknowledgement
took in, ``care_acknowledged_change``), the median and 90th percentile of the hours from the
change (the list version that made it) to its acknowledgement, and how many changes are
unacknowledged now for the patients registered with the unit. Counts under
:data:`pll.stats.disclosure.THRESHOLD` are suppressed as every patient count is, and the
times computed from a suppressed count are hidden.

The times come from the acknowledgement history, never from the lists; the count still
unacknowledged is computed now, per open registration, by the same rule the schedule uses
(:func:`pll.services.acknowledgements.pending`): its work grows with the registrations
and what changed since each unit's base.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

from pll.services.acknowledgements import pending
from pll.stats import disclosure
from pll.stats.indicators import OSLO
from pll.store import acknowledgements as store
from pll.store import repository as repo
from pll.store.db import Database


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (not empty): the smallest value at or
    above ``share`` of them."""
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1]


def acknowledgement_times(db: Database, since: date, until: date) -> list[dict[str, Any]]:
    """One row per care unit with acknowledgements in ``since..until`` (local days, both
    included) or changes unacknowledged now: ``unit`` (orgnr), ``acknowledged``,
    ``median_hours``, ``p90_hours`` and ``unacknowledged``, small counts suppressed."""
    first = datetime.combine(since, time(), OSLO)
    last = datetime.combine(until + timedelta(days=1), time(), OSLO)
    hours: dict[str, list[float]] = defaultdict(list)
    waiting: dict[str, int] = defaultdict(int)
    with db.read() as conn:
        for row in store.delays(conn, first, last):
            delay = row.acknowledged_at - row.changed_at
            hours[row.unit_orgnr].append(max(delay.total_seconds(), 0) / 3600)
        for reg in store.open_registrations(conn):
            head = repo.list_row(conn, patient_id=reg.patient_id)
            if head is None:
                continue
            found = pending(conn, head.id, head.patient_id, head.version, reg.unit_orgnr)
            waiting[reg.unit_orgnr] += len(found.changes) if found is not None else 0
    rows = [
        {
            "unit": unit,
            "acknowledged": len(hours[unit]),
            "median_hours": round(statistics.median(hours[unit]), 1) if hours[unit] else None,
            "p90_hours": round(percentile(hours[unit], 0.9), 1) if hours[unit] else None,
            "unacknowledged": waiting[unit],
        }
        for unit in sorted(set(hours) | set(waiting))
    ]
    # no total across units is published, so a unit's row is a group of its own
    return disclosure.suppress(
        rows,
        ["acknowledged", "unacknowledged"],
        {"median_hours": ["acknowledged"], "p90_hours": ["acknowledged"]},
        lambda r: r["unit"],
    )
