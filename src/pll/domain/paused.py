"""Pause PLL as a guard on changes: a paused list is changed by nobody until it is resumed.

A paused list is not being kept current (DESIGN §2, *Pause PLL*): whoever treats the patient
meanwhile, a hospital for example, keeps the medication in their own system, and the list
comes back with a doctor who resumes it. A change to a paused list — over REST, in a
transaction, in the web UI or in an SFM Basis ``$sendMedication`` (the sender's complete
list) — is refused unless it resumes the list (``$resume``, or ``pll-resume`` in the same
send); a send that changes nothing is no change and passes. Pure: the caller says whether
the change resumes the list.
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
