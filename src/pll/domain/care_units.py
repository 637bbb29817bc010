"""Care units and the patients they give medicines to (issue 17, docs/administration.md).

A care unit is a nursing home, a home-care service or a sheltered home (``omsorgsbolig``),
known by its organisation number. It registers a patient it gives medicines to and ends
that registration; only a nurse or doctor acting for that very unit (the organisation in
their token) may do either. A patient may be registered with several units at once (home
care and a short stay at a nursing home), but with one unit only once at a time: registering
again while a registration is open changes nothing and answers with the open one; the same
unit stating another kind is refused (end the registration first).

Pure rules, no I/O: the service loads the patient's open registrations and hands them here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from pll.domain.errors import Conflict, Forbidden, InvalidInput
from pll.domain.identifiers import check_orgnr
from pll.domain.model import Author, Role


class UnitKind(StrEnum):
    """What kind of care unit gives the medicines."""

    NURSING_HOME = "sykehjem"
    HOME_CARE = "hjemmetjeneste"
    SHELTERED_HOME = "omsorgsbolig"


#: Who registers a patient with a unit, or ends it: a nurse or doctor of that unit.
REGISTRARS = frozenset({Role.NURSE, Role.DOCTOR})


@dataclass(frozen=True)
class CareUnit:
    orgnr: str
    kind: UnitKind
    name: str | None = None

    def label(self) -> str:
        return f"{self.name or self.kind.value}, orgnr {self.orgnr}"


@dataclass(frozen=True)
class CareRegistration:
    """A patient's registration with one unit, open until ``ended_at``."""

    id: str
    patient_id: str
    unit: CareUnit
    started_at: datetime
    started_by: Author
    ended_at: datetime | None = None
    ended_by: Author | None = None

    @property
    def open(self) -> bool:
        return self.ended_at is None


def parse_unit(orgnr: str, kind: str, name: str | None, where: str, kind_where: str) -> CareUnit:
    """A unit from what a request says; a bad orgnr or an unknown kind is refused."""
    check_orgnr(orgnr, where)
    try:
        unit_kind = UnitKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in UnitKind)
        raise InvalidInput(
            f"Unknown kind of care unit {kind[:40]!r}; use one of {known}.",
            kind_where,
            norwegian=f"Ukjent type enhet «{kind[:40]}»; bruk en av {known}.",
        ) from None
    return CareUnit(orgnr, unit_kind, (name or "").strip()[:200] or None)


def acting_for(actor: Author, orgnr: str, where: str) -> None:
    """Refuse unless ``actor`` is a nurse or doctor acting for the unit ``orgnr``."""
    if actor.role not in REGISTRARS:
        raise Forbidden(
            "Only a nurse or doctor of the care unit registers its patients or ends a "
            f"registration; a {actor.role.value} may not.",
            where,
            norwegian=(
                "Bare en sykepleier eller lege ved enheten registrerer enhetens pasienter "
                "eller avslutter en registrering."
            ),
        )
    if actor.org_id != orgnr:
        raise Forbidden(
            f"You act for organisation {actor.org_id or '(none)'}, not for the care unit "
            f"{orgnr}: only the unit's own nurses and doctors register its patients or end "
            "a registration.",
            where,
            norwegian=(
                f"Du handler for virksomheten {actor.org_id or '(ingen)'}, ikke for enheten "
                f"{orgnr}: bare enhetens egne sykepleiere og leger registrerer dens pasienter."
            ),
        )


def register(
    open_registrations: Sequence[CareRegistration],
    patient_id: str,
    unit: CareUnit,
    actor: Author,
    now: datetime,
    new_id: str,
    where: str,
) -> CareRegistration | None:
    """The new registration of ``patient_id`` with ``unit``, or ``None`` when the patient
    is already registered there with the same kind (registering again changes nothing).
    The same unit with another kind is a :class:`Conflict`."""
    acting_for(actor, unit.orgnr, where)
    for current in open_registrations:
        if current.unit.orgnr != unit.orgnr:
            continue
        if current.unit.kind is not unit.kind:
            raise Conflict(
                f"The patient is already registered with care unit {unit.orgnr} as "
                f"{current.unit.kind.value}; end that registration before registering as "
                f"{unit.kind.value}.",
                where,
            )
        return None
    return CareRegistration(new_id, patient_id, unit, now, actor)


def end(
    open_registrations: Sequence[CareRegistration],
    orgnr: str,
    actor: Author,
    now: datetime,
    where: str,
) -> CareRegistration:
    """The patient's open registration with ``orgnr``, ended by ``actor``; a
    :class:`Conflict` when there is none."""
    acting_for(actor, orgnr, where)
    for current in open_registrations:
        if current.unit.orgnr == orgnr:
            return replace(current, ended_at=now, ended_by=actor)
    raise Conflict(
        f"The patient is not registered with care unit {orgnr}; there is nothing to end.",
        where,
    )
