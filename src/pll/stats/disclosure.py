"""Small counts are suppressed before figures leave PLL, so no patient can be singled out.

Every count about patients (lists, changes, accesses, cases) under :data:`THRESHOLD` is
suppressed — zero included, shown as "<5" — and every figure computed from one (a share, a
rate, a mean) is hidden ("skjult"). Suppressing one cell is not enough when its total is
published too: the published total minus the shown cells gives it back. So where exactly one
cell of a group (the municipalities of one region, the regions of the country, the actor
types of the country) is suppressed, the smallest shown cell of that group is hidden with it
(secondary suppression; it may be 5 or more, so it is not shown as "<5"). JSON shows both as
``null``. Counts of organisations are register data, not patient data, and are shown as they
are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

#: Patient counts below this are not shown.
THRESHOLD = 5
#: What a count under the threshold shows in CSV and on the dashboard.
SHOWN_AS = "<5"
#: What a figure hidden for another's sake shows: a count suppressed so that a small one
#: cannot be worked out from a total (it may well be 5 or more), or a share or mean computed
#: from a suppressed count.
HIDDEN_AS = "skjult"

Row = dict[str, Any]


class Suppressed:
    """A figure that is not shown (in JSON: ``null``). ``None`` is a figure that does not
    apply (a rate with nothing to divide by); this one exists and is hidden."""

    def __init__(self, mark: str) -> None:
        self.mark = mark

    def __repr__(self) -> str:
        return self.mark


#: A count under :data:`THRESHOLD`.
SUPPRESSED = Suppressed(SHOWN_AS)
#: A figure hidden for the sake of a suppressed count.
HIDDEN = Suppressed(HIDDEN_AS)


def hidden(value: Any) -> bool:
    """Whether a figure is suppressed, for either reason."""
    return isinstance(value, Suppressed)


def suppress(
    rows: Sequence[Row],
    counts: Sequence[str],
    derived: Mapping[str, Sequence[str]],
    group_of: Callable[[Row], Hashable],
    parts: Sequence[Sequence[str]] = (),
) -> list[Row]:
    """The rows with each patient count in ``counts`` below :data:`THRESHOLD` set to
    :data:`SUPPRESSED`, the secondary suppression done within each ``group_of(row)`` (the
    cell set to :data:`HIDDEN`), and each figure in ``derived`` set to :data:`HIDDEN` when
    any count it was computed from was suppressed (``derived`` maps a figure to the counts
    it comes from). Each of ``parts`` names counts of one row that add up to a shown total
    (the lists by how recently they were confirmed): the secondary suppression is done
    among them too."""
    out = [dict(r) for r in rows]
    for measure in counts:
        groups: dict[Hashable, list[Row]] = defaultdict(list)
        for row in out:
            if measure in row:
                groups[group_of(row)].append(row)
        for members in groups.values():
            small = [r for r in members if hidden(r[measure]) or r[measure] < THRESHOLD]
            for row in small:
                row[measure] = SUPPRESSED
            rest = [r for r in members if not hidden(r[measure])]
            if len(small) == 1 and rest:
                min(rest, key=lambda r: r[measure])[measure] = HIDDEN
    for names in parts:
        for row in out:
            missing = [n for n in names if hidden(row.get(n))]
            present = [n for n in names if n in row and not hidden(row[n])]
            if len(missing) == 1 and present:
                row[min(present, key=row.__getitem__)] = HIDDEN
    for figure, sources in derived.items():
        for row in out:
            if figure in row and any(hidden(row.get(s)) for s in sources):
                row[figure] = HIDDEN
    return out


def shown(value: Any) -> str:
    """A figure as CSV shows it: suppressed ones as :data:`SHOWN_AS` or :data:`HIDDEN_AS`,
    those that do not apply empty."""
    if isinstance(value, Suppressed):
        return value.mark
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def to_json(value: Any) -> None:
    """``orjson``'s ``default``: a suppressed figure is ``null``."""
    if isinstance(value, Suppressed):
        return
    raise TypeError(f"{type(value).__name__} is not JSON")
