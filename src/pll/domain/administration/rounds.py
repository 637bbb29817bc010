"""Where a round stands (issue 17, the ``/kurve`` pages): which planned doses of a day are
given, not given, due now, late or still to come. Pure: the records of the day are passed in.

**The rule.** A planned dose with a record that stands (not entered in error) is *given*
(``completed``) or *not given* (``not-done``), whatever the time. One without a record is:

- *late* once its planned time plus :data:`GRACE` (60 minutes) has passed — a dose given
  more than an hour after its time is late by the usual rule of Norwegian nursing homes'
  medication routines (the "one hour either way" of *utdeling*), and the nurse must see it
  before the next round;
- *due now* from :data:`DUE_AHEAD` (60 minutes) before its planned time until it is late —
  the round the nurse is on;
- *later* before that.

The window is the same for every round; a unit's own tolerance (some give the night dose
within two hours) is a setting that does not exist yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pll.domain.administration.schedule import PlannedDose

#: How long after its planned time a dose not recorded counts as late.
GRACE = timedelta(minutes=60)
#: How long before its planned time a dose counts as due now.
DUE_AHEAD = timedelta(minutes=60)


class DoseState(StrEnum):
    """Where one planned dose stands at a moment."""

    GIVEN = "given"
    NOT_GIVEN = "not-given"
    LATE = "late"
    DUE = "due"
    LATER = "later"


def dose_state(dose: PlannedDose, recorded: Mapping[str, str], now: datetime) -> DoseState:
    """The state of ``dose`` at ``now``; ``recorded`` maps the planned doses' keys that have
    a standing record to its status (``completed`` or ``not-done``)."""
    status = recorded.get(dose.key)
    if status == "completed":
        return DoseState.GIVEN
    if status is not None:
        return DoseState.NOT_GIVEN
    if now > dose.at + GRACE:
        return DoseState.LATE
    if now >= dose.at - DUE_AHEAD:
        return DoseState.DUE
    return DoseState.LATER


@dataclass(frozen=True)
class RoundState:
    """The doses of a day a nurse must act on: due now and late, each in planned order."""

    due: tuple[PlannedDose, ...]
    late: tuple[PlannedDose, ...]


def round_state(
    doses: Iterable[PlannedDose], recorded: Mapping[str, str], now: datetime
) -> RoundState:
    """The doses due now and the late ones among ``doses`` at ``now`` (see the module)."""
    due: list[PlannedDose] = []
    late: list[PlannedDose] = []
    for dose in sorted(doses, key=lambda d: (d.at, d.entry_id)):
        state = dose_state(dose, recorded, now)
        if state is DoseState.DUE:
            due.append(dose)
        elif state is DoseState.LATE:
            late.append(dose)
    return RoundState(tuple(due), tuple(late))
