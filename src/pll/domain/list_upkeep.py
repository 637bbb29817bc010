"""The versions PLL makes on its own, with no health worker behind them: discontinued entries
leaving the list after 90 days (DESIGN §3 rule 3) and entries flagged when a new drug
catalogue (FEST) no longer has their medicine as active (rule 6). The list's version moves so
readers and copies learn of it (rule 1); the baton does not."""

from __future__ import annotations

from datetime import datetime

from pll.domain.model import Author, ListVersion, MedicationList, Role, Touched

#: The author of changes that time makes, such as discontinued entries leaving the list.
SYSTEM = Author(name="PLL (automatisk)", role=Role.SYSTEM)
EXPIRED_REASON = "Seponert for mer enn 90 dager siden"


def expire_entries(lst: MedicationList, shown: set[str], now: datetime) -> ListVersion | None:
    """A version for discontinued entries leaving the list after 90 days (rule 3).

    ``shown`` are the entries on the list's current version. The list content changes, so
    its version moves (rule 1) and readers and copies learn of it; the baton does not move,
    because no health worker made the change.
    """
    visible = {e.id for e in lst.visible_entries(now)}
    if not shown - visible:
        return None
    lst.version += 1
    lst.updated = now
    touched = (Touched("List", lst.id, lst.version, "update"),)
    return ListVersion(lst.version, now, SYSTEM, "expire-entries", EXPIRED_REASON, touched)


WITHDRAWN_REASON = "Legemiddel ikke lenger aktivt i FEST (ny legemiddelkatalog)"


def flag_withdrawn(
    lst: MedicationList, withdrawn: frozenset[str], now: datetime
) -> ListVersion | None:
    """A version that flags the entries whose medicine a new drug catalogue no longer has
    (and unflags those it has again). Like the 90-day drop-off, it is PLL's own change: the
    version moves so readers and copies learn of it; the baton does not."""
    if withdrawn == lst.withdrawn:
        return None
    lst.withdrawn = withdrawn
    lst.version += 1
    lst.updated = now
    touched = (Touched("List", lst.id, lst.version, "update"),)
    return ListVersion(lst.version, now, SYSTEM, "fest-withdrawn", WITHDRAWN_REASON, touched)
