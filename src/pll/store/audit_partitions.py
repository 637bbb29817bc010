"""The monthly partitions of the audit trail on PostgreSQL (issue 20, migration 0023).

``audit_event`` is partitioned by RANGE (``recorded_at``), a partition per calendar month in
UTC named ``audit_event_YYYY_MM``, and a DEFAULT partition that takes a row whose month has
none, so an insert never fails for want of a partition. :func:`ensure` makes this month's
and the next ``ahead`` months' partitions, and the partition of every month that has rows
waiting in the default one (the database function ``audit_event_add_partition`` moves them
in). It runs from the sealer, in whatever process seals, and from ``pll audit partitions``;
several processes may run it at once (they take turns on an advisory lock in that
function). PLL never drops a partition: how long the trail is kept is a legal decision.

On SQLite the trail stays one table and every function here does nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

#: The names of the partitions, which the schema (``pll.store.schema``) does not declare.
PARTITION_NAME = re.compile(r"^audit_event_(\d{4}_\d{2}|default)$")

#: How long maintenance waits for a lock before giving up until its next turn: attaching a
#: partition locks the default partition, and readers of every partition (an access log, a
#: long ``pll audit verify``) would queue behind a waiting lock. Inserts are not held up.
LOCK_TIMEOUT = "1s"

_LIST = text(
    """
    SELECT c.relname AS name,
           pg_get_expr(c.relpartbound, c.oid) AS bound,
           GREATEST(COALESCE(s.n_live_tup, 0), c.reltuples::bigint, 0) AS rows,
           pg_total_relation_size(c.oid) AS bytes
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE i.inhparent = 'audit_event'::regclass
    ORDER BY c.relname
    """
)
_WAITING = text(
    "SELECT DISTINCT date_trunc('month', recorded_at) AS month FROM audit_event_default"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


def is_partition(name: str | None) -> bool:
    """Whether ``name`` is a partition of ``audit_event`` (for schema comparisons)."""
    return name is not None and PARTITION_NAME.match(name) is not None


@dataclass(frozen=True)
class Partition:
    """One partition: its name, its range of ``recorded_at`` (none for the default one),
    PostgreSQL's estimate of its rows and its size on disk with its indexes."""

    name: str
    start: datetime | None
    end: datetime | None
    rows: int
    bytes: int

    @property
    def is_default(self) -> bool:
        return self.start is None


def partitioned(conn: Connection) -> bool:
    """Whether the trail is partitioned here (PostgreSQL after migration 0023)."""
    if conn.dialect.name != "postgresql":
        return False
    found = conn.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass('audit_event')")
    ).scalar()
    return found == "p"


def listing(conn: Connection) -> list[Partition]:
    """Every partition, the months in order and the default partition last."""
    if not partitioned(conn):
        return []
    found = []
    for row in conn.execute(_LIST):
        bound = _BOUND.search(row.bound or "")
        start = datetime.fromisoformat(bound.group(1)).replace(tzinfo=UTC) if bound else None
        end = datetime.fromisoformat(bound.group(2)).replace(tzinfo=UTC) if bound else None
        found.append(Partition(row.name, start, end, int(row.rows), int(row.bytes)))
    return sorted(found, key=lambda p: (p.is_default, p.start or _EPOCH))


def first_of_month(moment: datetime, months_later: int = 0) -> datetime:
    """The first instant (UTC) of the month ``months_later`` after ``moment``'s."""
    moment = moment.astimezone(UTC)
    index = moment.year * 12 + moment.month - 1 + months_later
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def ensure(conn: Connection, now: datetime, ahead: int) -> list[str]:
    """Make the partitions of ``now``'s month, of the ``ahead`` months after it, and of every
    month with rows waiting in the default partition (moving those rows in); returns the
    names made. Idempotent. Gives up (raising :class:`PartitionsBusy`) rather than wait more
    than :data:`LOCK_TIMEOUT` for a lock; the caller's transaction must then roll back."""
    if not partitioned(conn):
        return []
    # Makers take turns before they read the trail: one that read the default partition
    # while another waited to attach would deadlock with it. Waiting here holds up no one
    # else, and the second finds the partitions made; only the trail's locks are timed.
    conn.execute(text("SELECT pg_advisory_xact_lock(7023)"))
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    try:
        have = {p.start for p in listing(conn) if p.start is not None}
        wanted = {first_of_month(now, n) for n in range(ahead + 1)}
        # the column holds naive UTC (pll.store.schema.UTCDateTime)
        wanted |= {row.month.replace(tzinfo=UTC) for row in conn.execute(_WAITING)}
        made = []
        for month in sorted(wanted - have):
            name = conn.execute(
                text("SELECT audit_event_add_partition(:month)"),
                {"month": month.replace(tzinfo=None)},
            ).scalar()
            if name is not None:
                made.append(str(name))
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise PartitionsBusy(str(exc.orig)) from exc
        raise
    return made


class PartitionsBusy(Exception):
    """Another transaction held a lock the partition maintenance needed; try again later."""
