"""A care unit's own settings for its administration chart (issue 17, docs/administration.md
"Unit settings"): the clock time of each round, and whether drugs of prescription group B
need a second signature as group A drugs always do. Pure rules, no I/O.

**Who.** Only a nurse (HPR SP) or doctor (LE) acting for the unit (the organisation in
their token) sets them; anyone else is refused (``Forbidden``).

**When they apply.** Settings take effect from the next local day (:func:`effective_from`)
and are kept with the day they apply from, never overwritten for a day already begun: a
day's planned doses keep the clock times they were planned (and recorded) with, so a
record made this morning still names a planned dose of today's chart after the unit moves
its rounds. Setting them again before they apply replaces what was set for that day.

**Which unit's times.** The chart of a caller acting for a unit the patient is registered
with uses that unit's times; any other caller (a doctor, another unit) gets the defaults
(:data:`~pll.domain.administration.slots.DEFAULT_TIMES`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from pll.domain.administration.slots import DEFAULT_TIMES, OSLO, Slot, slot_times
from pll.domain.errors import Forbidden
from pll.domain.model import Author, Role

#: Who sets a unit's settings: its nurses and doctors (as they register its patients).
SETTERS = frozenset({Role.NURSE, Role.DOCTOR})


@dataclass(frozen=True)
class UnitSettings:
    """A unit's settings from the local day ``valid_from`` on (until the next ones)."""

    orgnr: str
    valid_from: date
    times: Mapping[Slot, time]
    #: drugs of prescription group B need a second signer at this unit
    group_b_second_signature: bool = False
    set_at: datetime | None = None
    set_by: Author | None = None


def defaults(orgnr: str | None, day: date = date.min) -> UnitSettings:
    """What applies where a unit has set nothing: the default rounds, group A only."""
    return UnitSettings(orgnr or "", day, dict(DEFAULT_TIMES))


def effective_from(now: datetime) -> date:
    """The first day settings made at ``now`` apply to: the next local day."""
    return now.astimezone(OSLO).date() + timedelta(days=1)


def make(
    orgnr: str,
    times: Mapping[Slot | str, time],
    group_b: bool,
    actor: Author,
    now: datetime,
    where: str,
) -> UnitSettings:
    """New settings of the unit ``orgnr``, set by ``actor`` at ``now``. ``times`` are the
    rounds given; rounds not given take their default time. Refused: a caller who is not a
    nurse or doctor acting for the unit (``Forbidden`` at ``where``), a time with seconds
    or a time zone, an unknown round, and rounds out of the order of the day
    (``InvalidInput`` at ``slots.<round>``)."""
    acting_for(actor, orgnr, where)
    return UnitSettings(orgnr, effective_from(now), slot_times(times), group_b, now, actor)


def acting_for(actor: Author, orgnr: str, where: str) -> None:
    """Refuse unless ``actor`` is a nurse or doctor acting for the unit ``orgnr``."""
    if actor.role not in SETTERS:
        raise Forbidden(
            "Only a nurse or doctor of the care unit sets its rounds and second-signature "
            f"rule; a {actor.role.value} may not.",
            where,
            norwegian="Bare en sykepleier eller lege ved enheten endrer enhetens innstillinger.",
        )
    if actor.org_id != orgnr:
        raise Forbidden(
            f"You act for organisation {actor.org_id or '(none)'}, not for the care unit "
            f"{orgnr}: only the unit's own nurses and doctors set its settings.",
            where,
            norwegian=(
                f"Du handler for virksomheten {actor.org_id or '(ingen)'}, ikke for enheten "
                f"{orgnr}: bare enhetens egne sykepleiere og leger endrer innstillingene."
            ),
        )


def in_force(history: Sequence[UnitSettings], day: date, orgnr: str | None) -> UnitSettings:
    """The settings that apply on ``day``: the latest of ``history`` from that day or
    before, else the defaults."""
    found = [s for s in history if s.valid_from <= day]
    return max(found, key=lambda s: s.valid_from) if found else defaults(orgnr)


def periods(
    history: Sequence[UnitSettings], first: date, last: date, orgnr: str | None
) -> list[tuple[date, date, UnitSettings]]:
    """``first`` .. ``last`` cut where the unit's settings change: (from, to, settings)
    with both days included, in order."""
    out: list[tuple[date, date, UnitSettings]] = []
    day = first
    while day <= last:
        current = in_force(history, day, orgnr)
        later = sorted(s.valid_from for s in history if day < s.valid_from <= last)
        end = later[0] - timedelta(days=1) if later else last
        out.append((day, end, current))
        day = end + timedelta(days=1)
    return out


def needs_second_signature(rx_group: str | None, settings: UnitSettings) -> bool:
    """Whether a drug of prescription group ``rx_group`` needs a second signer at the unit:
    group A always, group B where the unit chose it."""
    group = (rx_group or "").strip().upper()
    return group == "A" or (group == "B" and settings.group_b_second_signature)
