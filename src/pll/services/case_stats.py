"""The statistics of case deadlines (issue 18; docs/statistics.md "Case deadlines"): per
week (the week a case was reported, Norwegian time) and kind of case, how many were
reported, how many were closed within their deadline, and how many went past it (closed
late, or still open past it now). Counts under :data:`pll.stats.disclosure.THRESHOLD` are
suppressed as every count touching patients is.

Computed from the cases themselves when asked, with the service clock for "now": a case's
deadline passes with time, not with an event, so the event-fed counters of
:mod:`pll.services.stats` cannot hold it. The work grows with the cases reported in the span.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from pll.domain.cases import Status
from pll.domain.deadlines import KINDS
from pll.stats import disclosure
from pll.stats.indicators import OSLO, week
from pll.store import technical_cases as store
from pll.store.db import Database

COUNTS = ("reported", "closed_in_time", "overdue", "overdue_open")


def case_deadlines(
    db: Database, clock: Callable[[], datetime], since: date, until: date
) -> list[dict[str, Any]]:
    """One row per week and kind with cases reported in ``since..until`` (local days, both
    included): ``week``, ``kind`` (clinical, administration, technical), ``reported``,
    ``closed_in_time``, ``overdue`` (closed after the deadline or open past it now) and
    ``overdue_open`` (of those, still open). Cases without a deadline (reported before
    deadlines were kept) count as reported only."""
    first = datetime.combine(since, time(), OSLO)
    last = datetime.combine(until + timedelta(days=1), time(), OSLO)
    now = clock()
    figures: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    with db.read() as conn:
        found = store.case_times(conn, first, last)
    for kind, row in found:
        f = figures[(week(row.reported_at), kind)]
        f["reported"] += 1
        if row.due_at is None:
            continue
        closed = Status(row.status).closed
        if closed and row.updated_at <= row.due_at:
            f["closed_in_time"] += 1
        elif closed:
            f["overdue"] += 1
        elif now > row.due_at:
            f["overdue"] += 1
            f["overdue_open"] += 1
    order = {k: i for i, k in enumerate(KINDS)}
    rows = [
        {"week": w, "kind": k, **figures[(w, k)]}
        for w, k in sorted(figures, key=lambda wk: (wk[0], order[wk[1]]))
    ]
    # no total across kinds is published, so each row is a group of its own
    return disclosure.suppress(rows, COUNTS, {}, lambda r: (r["week"], r["kind"]))
