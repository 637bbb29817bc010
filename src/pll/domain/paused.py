"""Pause PLL as a guard on changes that come as a whole list (SFM Basis ``$sendMedication``).

A paused list is not being kept current (DESIGN §2, *Pause PLL*): whoever treats the patient
meanwhile, a hospital for example, keeps the medication in their own system, and the list
comes back with a doctor who resumes it. A send is the sender's complete list, so a send to
a paused list that would change it is refused unless the same send resumes the list; a send
that changes nothing is no change and passes. Pure: the caller says whether the send changes
anything and whether it resumes.
"""

from __future__ import annotations

from pll.domain.errors import Conflict
from pll.domain.model import Pause


def check_change_of_paused(pause: Pause | None, *, resumes: bool, expression: str) -> None:
    """Refuse (:class:`Conflict`, nothing written) a change of a paused list that does not
    resume it. ``pause`` is the list's pause as it is now, ``None`` when it is not paused."""
    if pause is None or resumes:
        return
    since = pause.at.isoformat(timespec="minutes")
    raise Conflict(
        f"The PLL is paused (Pause PLL) since {since} by {pause.by.label()}: {pause.reason}. "
        "A paused list is not changed until a doctor resumes it: resume it in the same send "
        "(the pll-resume extension on the M25.1 sfm-PLL-info) or with List/$resume, after "
        "reconciling it; nothing was saved.",
        expression,
        {"pausedAt": pause.at.isoformat(), "pausedBy": pause.by.label()},
        norwegian=(
            f"Legemiddellisten er pauset siden {since} av {pause.by.label()}: {pause.reason}. "
            "Den endres ikke før en lege gjenopptar den; ingenting ble lagret."
        ),
    )
